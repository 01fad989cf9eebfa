"""The Inception path, tested with a small registered stand-in extractor (no download), and with
the real weights only where the file is present."""

import json

import numpy as np
import pytest

from ganbench import data
from ganbench.errors import GanbenchError
from ganbench.metrics import evaluate as ev
from ganbench.metrics import inception, stats

torch = pytest.importorskip("torch")
torch_fidelity = pytest.importorskip("torch_fidelity")
from torch_fidelity.feature_extractor_base import FeatureExtractorBase  # noqa: E402
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor  # noqa: E402

STAND_IN = "ganbench-test-stand-in"


class StandIn(FeatureExtractorBase):
    """Features: 4x4 average pools of each RGB channel (48-d); logits: a fixed projection of them.
    Its 'weights' file holds the projection as raw float32 bytes."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        raw = open(feature_extractor_weights_path, "rb").read()
        self.projection = torch.from_numpy(np.frombuffer(raw, np.float32).reshape(48, 10).copy())

    @staticmethod
    def get_provided_features_list():
        return ("pool", "logits")

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        pooled = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        return pooled, pooled @ self.projection


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    if STAND_IN not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(STAND_IN, StandIn)
    path = tmp_path_factory.mktemp("w") / "stand-in.bin"
    path.write_bytes(np.random.default_rng(0).standard_normal((48, 10)).astype(np.float32).tobytes())
    return path


def stand_in(weights, prefix=None):
    prefix = prefix or inception.sha256_file(weights)[:8]
    return inception.TorchFidelityExtractor(STAND_IN, weights, "pool", "logits", expected_prefix=prefix)


def test_stand_in_runs_through_the_evaluation(weights, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))
    extractor = stand_in(weights)
    images, _ = data.load("mnist", "test", data_dir)
    fake = images[:500]
    result = ev.evaluate(fake, "mnist", 500, "test", ("fid", "score"), data_dir, extractor)
    # the same numbers straight from the extractor's features
    real_f, _ = extractor.run(images)
    fake_f, fake_p = extractor.run(fake)
    assert fake_f.shape == (500, 48)
    expected = stats.frechet_distance(*stats.mean_cov(real_f), *stats.mean_cov(fake_f))
    assert result["metrics"]["fid"] == pytest.approx(expected, rel=1e-9)
    assert result["metrics"]["score"] == pytest.approx(stats.classifier_score(fake_p)[0], rel=1e-9)
    assert result["protocol"]["extractor_sha256"] == inception.sha256_file(weights)
    assert STAND_IN in result["protocol"]["features"]


def test_missing_weights_say_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))
    with pytest.raises(GanbenchError) as err:
        inception.TorchFidelityExtractor()
    assert str(err.value) == (
        f"Inception weights not found at {tmp_path}/inception/weights-inception-2015-12-05-6726825d.pth: run "
        "`ganbench data download inception` (or eval --download), or put torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth there, or pass --inception-weights PATH"
    )


def test_wrong_weights_are_refused_before_loading(weights):
    with pytest.raises(GanbenchError, match=r"does not match the Inception weights \(6726825d...\)"):
        inception.TorchFidelityExtractor(STAND_IN, weights, "pool", "logits")


def test_cli_reports_missing_weights_in_one_line(tmp_path, monkeypatch, capsys):
    from ganbench.cli import main

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))
    np.savez(tmp_path / "x.npz", images=np.zeros((10, 28, 28, 1), np.uint8))
    code = main(["eval", "--images", str(tmp_path / "x.npz"), "--dataset", "mnist", "--features", "inception",
                 "--n", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Inception weights not found" in err


class NamedLikeInception(StandIn):
    """The stand-in under the names of torch-fidelity's Inception outputs, so that the default
    extractor's feature choice reads it."""

    @staticmethod
    def get_provided_features_list():
        return (inception.FEATURES, inception.LOGITS)


@pytest.fixture
def published(weights, tmp_path, monkeypatch):
    """The stand-in's weights served on 127.0.0.1 under the published file name, recorded as the
    published digest; the extractor named like Inception; a private cache. Yields the base URL."""
    from test_data import serve

    if "ganbench-test-inception-names" not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor("ganbench-test-inception-names", NamedLikeInception)
    monkeypatch.setattr(inception, "EXTRACTOR", "ganbench-test-inception-names")
    digest = inception.sha256_file(weights)
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", digest[:8])
    monkeypatch.setattr(inception, "WEIGHTS_SHA256", digest)
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    (served / inception.WEIGHTS_FILE).write_bytes(weights.read_bytes())
    with serve(served) as url:
        monkeypatch.setattr(inception, "WEIGHTS_URL", url + inception.WEIGHTS_FILE)
        yield url


def test_data_download_inception_stores_the_checked_file(published, weights, tmp_path, capsys):
    from ganbench.cli import main

    assert main(["data", "download", "inception", "--base-url", published]) == 0
    stored = inception.default_weights_path()
    assert capsys.readouterr().out == f"ready: {stored}\n"
    assert stored.read_bytes() == weights.read_bytes()
    assert [p.name for p in stored.parent.iterdir()] == [inception.WEIGHTS_FILE]  # no temporary file left
    (tmp_path / "served" / inception.WEIGHTS_FILE).unlink()  # a verified copy is not fetched again
    assert main(["data", "download", "inception", "--base-url", published]) == 0


@pytest.mark.parametrize("wrong", ["prefix", "full digest"])
def test_download_failing_the_digest_keeps_nothing(published, monkeypatch, capsys, wrong):
    from ganbench.cli import main

    if wrong == "prefix":
        monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", "6726825d")
    else:
        monkeypatch.setattr(inception, "WEIGHTS_SHA256", "0" * 64)
    assert main(["data", "download", "inception", "--base-url", published]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the (transient) progress bar
    assert err == f"ganbench: error: download of {published}{inception.WEIGHTS_FILE} failed its checksum: nothing was kept"
    assert not list(inception.default_weights_path().parent.iterdir())


def test_eval_download_fetches_on_first_use_then_evaluates(published, tmp_path, data_dir, capsys):
    from ganbench.cli import main

    images, _ = data.load("mnist", "test", data_dir)
    np.savez(tmp_path / "x.npz", images=images[:200])
    args = ["eval", "--images", str(tmp_path / "x.npz"), "--dataset", "mnist", "--features", "inception",
            "--n", "200", "--metrics", "fid", "--out", str(tmp_path / "e.json")]
    assert main(args) == 2  # without --download: missing, one line
    assert "Inception weights not found" in capsys.readouterr().err
    assert main(args + ["--download"]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["protocol"]["extractor_sha256"] == inception.WEIGHTS_SHA256
    assert result["metrics"]["fid"] > 0 and inception.default_weights_path().is_file()


@pytest.mark.skipif(not inception.default_weights_path().is_file(), reason="real Inception weights not in the cache")
def test_real_inception_weights(data_dir):
    extractor = inception.TorchFidelityExtractor()
    images, _ = data.load("mnist", "test", data_dir)
    features, probs = extractor.run(images[:8])
    assert features.shape == (8, 2048) and probs.shape == (8, 1008)
    assert np.allclose(probs.sum(axis=1), 1)


def test_cifar10_reference_through_the_stand_in(weights, tmp_path, monkeypatch):
    """Inception-path reference statistics of CIFAR-10 train/test, on files in the binary format."""
    from test_data_binary import write_cifar

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    expected = write_cifar(tmp_path / "data")
    extractor = stand_in(weights)
    for split in ("train", "test"):
        ref = ev.reference("cifar10", split, extractor, tmp_path / "data")
        direct, _ = extractor.run(expected[split][0])
        np.testing.assert_allclose(ref["features"], direct, rtol=1e-6)
        again = ev.reference("cifar10", split, extractor, tmp_path / "data")  # served from the cache
        assert again["key"] == ref["key"] and np.array_equal(again["features"], ref["features"])
        assert np.array_equal(again["probs"], ref["probs"])
    fake = expected["test"][0]
    result = ev.evaluate(fake, "cifar10", 20, "train", ("fid", "kid", "pr"), tmp_path / "data", extractor)
    assert result["protocol"]["reference"] == "cifar10 train (100 images)"
    assert result["metrics"]["fid"] > 0


def test_cifar10_has_no_classifier(tmp_path, monkeypatch):
    from ganbench.metrics.classifier import load_classifier

    with pytest.raises(GanbenchError, match=r"classifier metrics exist for mnist and fashion-mnist only; use --features inception"):
        load_classifier("cifar10")
