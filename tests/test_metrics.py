"""Metrics: numpy/scipy oracles, torch-fidelity's own functions, and a sanity ladder on real data."""

import numpy as np
import pytest
import scipy.linalg

from ganbench import data
from ganbench.errors import GanbenchError
from ganbench.images import to_uint8
from ganbench.metrics import evaluate as ev
from ganbench.metrics import stats

REL = 1e-6


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((600, 16)) @ rng.standard_normal((16, 16)) * 0.5
    b = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16)) * 0.6 + 0.3
    return a, b


def test_frechet_matches_scipy_sqrtm(features):
    a, b = features
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert stats.frechet_distance(*stats.mean_cov(a), *stats.mean_cov(b)) == pytest.approx(expected, rel=REL)
    assert stats.frechet_distance(*stats.mean_cov(a), *stats.mean_cov(a)) == pytest.approx(0, abs=1e-8)


def test_frechet_matches_torch_fidelity(features):
    torch = pytest.importorskip("torch")
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = features
    ref = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                   fid_features_to_statistics(torch.from_numpy(b)), verbose=False)
    assert stats.frechet_distance(*stats.mean_cov(a), *stats.mean_cov(b)) == pytest.approx(
        ref["frechet_inception_distance"], rel=REL)


def kid_oracle(x, y):
    """Unbiased MMD^2, cubic kernel, written as the double sums of Binkowski et al. (2018), eq. 2."""
    m, d = len(x), x.shape[1]
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_oracle_and_torch_fidelity(features):
    a, b = features[0][:60], features[1][:60]
    mean, std = stats.kid(a, b, subsets=1, subset_size=60)  # one subset of everything: no sampling
    assert mean == pytest.approx(kid_oracle(a, b), rel=REL) and std == 0
    torch = pytest.importorskip("torch")
    from torch_fidelity.metric_kid import kid_features_to_metric

    ref = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=1, kid_subset_size=60,
                                 verbose=False, rng_seed=0)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=REL)


def test_kid_subsets_are_seeded(features):
    a, b = features
    first = stats.kid(a, b, subsets=20, subset_size=100)
    assert first == stats.kid(a, b, subsets=20, subset_size=100)
    assert first[1] > 0 and first[0] > 0


def test_precision_recall_hand_example():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    # k=1 radii of real: 1 everywhere; fake at 0.5 and 10: one inside, one outside -> precision 0.5
    fake = np.array([[0.5], [10.0], [10.5]])
    precision, recall = stats.precision_recall(real, fake, k=1)
    assert precision == pytest.approx(1 / 3)
    # fake radii (k=1): 9.5, 0.5, 0.5 -> the ball around 0.5 (radius 9.5) covers every real point
    assert recall == pytest.approx(1.0)
    assert stats.precision_recall(real, real + 100, k=1) == (0.0, 0.0)


def test_score_and_coverage_extremes():
    eye = np.eye(10)
    uniform_confident = np.repeat(eye, 100, axis=0)
    assert stats.classifier_score(uniform_confident, splits=1)[0] == pytest.approx(10, rel=1e-9)
    one_class = np.tile(eye[3], (1000, 1))
    assert stats.classifier_score(one_class, splits=10)[0] == pytest.approx(1, rel=1e-9)
    assert stats.class_coverage(uniform_confident) == (1.0, pytest.approx(0, abs=1e-12))
    assert stats.class_coverage(one_class) == (0.1, pytest.approx(np.log(10), rel=1e-12))


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    return data.load("mnist", "test", data_dir)


def noisy(images, sigma, seed=0):
    x = data.to_unit_range(images)
    x = x + sigma * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    return to_uint8(x)


def test_sanity_ladder_fid(quick_classifier, mnist_test, data_dir):
    """Half the test split against the train split, then the other half with Gaussian noise."""
    test_images = mnist_test[0][:5000]
    run = lambda imgs: ev.evaluate(imgs, "mnist", 5000, "train", ("fid",), data_dir, quick_classifier)["metrics"]["fid"]  # noqa: E731
    real = run(mnist_test[0][5000:])
    noise = [run(noisy(test_images, s)) for s in (0.1, 0.3, 0.6)]
    # measured: test-vs-train 2.7; sigma 0.1, 0.3, 0.6: 8.5, 52, 248
    assert real < noise[0] / 2
    assert noise[0] < noise[1] < noise[2]


def test_one_class_generator_has_low_coverage_and_recall(quick_classifier, mnist_test, data_dir):
    images, labels = mnist_test
    one_class = images[labels == 3][:1000]
    result = ev.evaluate(one_class, "mnist", 1000, "test", ("coverage", "pr"), data_dir, quick_classifier)
    assert result["metrics"]["coverage"] == 0.1
    assert result["metrics"]["recall"] < 0.3
    real = ev.evaluate(images[:1000], "mnist", 1000, "test", ("coverage", "pr"), data_dir, quick_classifier)
    assert real["metrics"]["coverage"] == 1.0
    assert real["metrics"]["recall"] > 0.8 and real["metrics"]["precision"] > 0.8


def test_evaluation_is_deterministic_and_states_its_protocol(quick_classifier, mnist_test, data_dir):
    images = mnist_test[0][5000:6000]
    first = ev.evaluate(images, "mnist", 1000, "test", ev.METRICS, data_dir, quick_classifier)
    second = ev.evaluate(images, "mnist", 1000, "test", ev.METRICS, data_dir, quick_classifier)
    assert first == second
    assert set(first["metrics"]) == {"fid", "kid", "kid_std", "score", "score_std", "precision", "recall",
                                     "coverage", "class_kl"}
    protocol = first["protocol"]
    assert protocol["n"] == 1000 and protocol["reference"] == "mnist test (10000 images)"
    assert protocol["extractor_sha256"] == quick_classifier.meta["weights_sha256"]


def test_bad_images_are_refused(quick_classifier, mnist_test, data_dir):
    images = mnist_test[0][:100]
    with pytest.raises(GanbenchError, match=r"images must be uint8 \[N, H, W, C\], got float32"):
        ev.evaluate(images.astype(np.float32), "mnist", 100, classifier=quick_classifier, data_dir=data_dir)
    with pytest.raises(GanbenchError, match=r"mnist images have 1 channel\(s\), got 3"):
        ev.evaluate(np.repeat(images, 3, axis=3), "mnist", 100, classifier=quick_classifier, data_dir=data_dir)
    with pytest.raises(GanbenchError, match=r"the mnist classifier takes 28x28 or 32x32 images, got 20x20"):
        ev.evaluate(images[:, :20, :20], "mnist", 100, classifier=quick_classifier, data_dir=data_dir)
    with pytest.raises(GanbenchError, match=r"need 500 images for --n 500, got 100"):
        ev.evaluate(images, "mnist", 500, classifier=quick_classifier, data_dir=data_dir)
    with pytest.raises(GanbenchError, match=r"unknown metric 'is'"):
        ev.parse_metrics("fid,is")


def test_missing_classifier_says_how_to_train(tmp_path, monkeypatch):
    from ganbench.metrics.classifier import load_classifier

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))
    with pytest.raises(GanbenchError, match=r"train it with `ganbench classifier train --dataset fashion-mnist`"):
        load_classifier("fashion-mnist")


def test_images_from_npz_and_folder(tmp_path, mnist_test):
    from PIL import Image

    images = mnist_test[0][:5]
    np.savez(tmp_path / "s.npz", images=images)
    assert np.array_equal(ev.load_images(tmp_path / "s.npz"), images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    assert np.array_equal(ev.load_images(folder), images)
    (folder / "bad.png").write_bytes(b"nope")
    with pytest.raises(GanbenchError, match=r"bad.png: unreadable image"):
        ev.load_images(folder)


def test_periodic_evaluation_is_logged_with_wall_clock(quick_classifier, tmp_path, data_dir):
    import json

    from ganbench.config import TrainConfig
    from ganbench.training import loop

    config = TrainConfig(steps=4, eval_every=2, eval_n=300, sample_every=10, checkpoint_every=10, log_every=1)
    loop.train(config, tmp_path / "run", data_dir=data_dir, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval/fid"] > 0 and 0 <= r["eval/coverage"] <= 1 for r in evals)
    elapsed = [r["elapsed_s"] for r in records]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0


def test_periodic_evaluation_without_classifier_fails_before_writing(tmp_path, monkeypatch, data_dir):
    from ganbench.config import TrainConfig
    from ganbench.training import loop

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(GanbenchError, match="no mnist classifier"):
        loop.train(TrainConfig(steps=2, eval_every=1), tmp_path / "run", data_dir=data_dir, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_eval_cli_on_a_checkpoint(quick_classifier, tmp_path, data_dir, capsys, backend):
    import json

    from ganbench.cli import main
    from ganbench.config import TrainConfig
    from ganbench.training import loop

    run = tmp_path / "run"
    loop.train(TrainConfig(steps=2, backend=backend), run, data_dir=data_dir, progress=False)
    # no --backend: the checkpoint's own backend generates the samples
    code = main(["eval", "--checkpoint", str(run), "--n", "300", "--metrics", "fid,coverage",
                 "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "fid" in out and "coverage" in out
    result = json.loads((run / "eval.json").read_text())
    assert result["source"] == {"checkpoint": str(run), "step": 2, "backend": backend, "seed": 0, "generator": "raw",
                                "truncation": 0.0, "standing_stats": 0, "precision": "fp32"}
    assert result["protocol"]["n"] == 300 and set(result["metrics"]) == {"fid", "coverage", "class_kl"}
    assert result["metrics"]["fid"] > 0
    # how the generator samples is chosen here and recorded
    assert main(["eval", "--checkpoint", str(run), "--n", "300", "--metrics", "fid", "--truncation", "0.5",
                 "--standing-stats", "2", "--data-dir", str(data_dir), "--out", str(tmp_path / "t.json")]) == 0
    other = json.loads((tmp_path / "t.json").read_text())
    assert (other["source"]["truncation"], other["source"]["standing_stats"]) == (0.5, 2)
    assert other["metrics"]["fid"] != pytest.approx(result["metrics"]["fid"], rel=1e-3)


def test_eval_of_images_refuses_generator_options(tmp_path, capsys):
    from ganbench.cli import main

    np.savez(tmp_path / "x.npz", images=np.zeros((4, 28, 28, 1), np.uint8))
    assert main(["eval", "--images", str(tmp_path / "x.npz"), "--dataset", "mnist", "--truncation", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--images are already drawn" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]
