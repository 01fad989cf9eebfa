"""The benchmark's JSON is complete and self-consistent (no timing assertions)."""

import json

import numpy as np
import pytest

from ganbench.archs import build_spec
from ganbench.archs.flops import train_step_flops
from ganbench.bench.report import PHASES, combinations, run
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError

FIELDS = {"preset", "model", "width", "precision", "step", "image_size", "phases_s", "options", "backend", "mode", "mode_detail", "batch_size", "framework", "threads", "warmup_steps",
          "timed_steps", "first_step_s", "median_step_s", "iqr_step_s", "min_step_s", "max_step_s", "img_per_s",
          "step_gflop", "achieved_gflops", "matmul_gflops", "matmul_gflops_before_after", "fraction_of_matmul_rate",
          "rss_after_import_mb",
          "peak_rss_mb"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("bench") / "out"
    return out, run(["dcgan"], ["torch", "tf"], ["eager", "graph"], [8], steps=3, warmup=1, out=out, data_dir=data_dir)


def test_rows_are_complete_and_consistent(bench):
    out, result = bench
    assert json.loads((out / "bench.json").read_text()) == result
    rows = result["rows"]
    assert [(r["backend"], r["mode"]) for r in rows] == [("torch", "eager"), ("tf", "eager"), ("tf", "graph")]
    flops = train_step_flops(build_spec("dcgan", 1), TrainConfig(batch_size=8))
    for r in rows:
        assert set(r) == FIELDS, r.get("error")
        assert (r["preset"], r["model"], r["image_size"]) == ("dcgan", "dcgan", 32)
        assert r["step"] == "alternating, n_dis 1, loss ns, G batch reused"
        assert list(r["phases_s"]) == list(PHASES) and all(t > 0 for t in r["phases_s"].values())
        assert r["batch_size"] == 8 and r["timed_steps"] == 3 and r["warmup_steps"] == 1
        assert r["min_step_s"] <= r["median_step_s"] <= r["max_step_s"]
        assert r["img_per_s"] == pytest.approx(8 / r["median_step_s"])
        assert r["step_gflop"] == pytest.approx(flops / 1e9)
        assert r["achieved_gflops"] == pytest.approx(r["step_gflop"] / r["median_step_s"])
        assert r["matmul_gflops"] == max(r["matmul_gflops_before_after"]) and len(r["matmul_gflops_before_after"]) == 2
        assert r["fraction_of_matmul_rate"] == pytest.approx(r["achieved_gflops"] / r["matmul_gflops"])
        assert r["peak_rss_mb"] >= r["rss_after_import_mb"] > 50
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    assert all(r["precision"] == "fp32" for r in rows)


def test_precisions_are_rows_of_their_own(tmp_path, data_dir):
    """--precisions fp32,bf16: a row per precision, the matmul rate measured in it, and the report's
    speed-up line (bf16 is emulated on CPUs without bf16 hardware: the machine line says which)."""
    out = tmp_path / "p"
    result = run(["dcgan"], ["torch"], ["eager"], [8], steps=2, warmup=1, out=out, data_dir=data_dir,
                 precisions=["fp32", "bf16"])
    fp32, bf16 = result["rows"]
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert fp32["matmul_gflops"] != bf16["matmul_gflops"]
    report = (out / "report.md").read_text()
    assert f"- dcgan torch eager, batch 8: bf16 {bf16['img_per_s'] / fp32['img_per_s']:.2f}x the fp32 img/s." in report
    assert "| dcgan | torch " in report and "| bf16 | 8 |" in report
    flags = result["machine"]["low_precision_flags"]
    assert ("No bf16/fp16 hardware" in report) == (not flags)


def test_report_names_modes_and_the_faster_backend(bench):
    out, result = bench
    report = (out / "report.md").read_text()
    assert report.count("| dcgan |") == 6  # the timing table and the breakdown
    assert "tf graph: tf.function graph, jit_compile=False (no XLA); NHWC tensors" in report
    assert "- dcgan: dcgan at 32x32; alternating, n_dis 1, loss ns, G batch reused" in report
    best = {b: max((r for r in result["rows"] if r["backend"] == b), key=lambda r: r["img_per_s"]) for b in ("torch", "tf")}
    fast, slow = sorted(best.values(), key=lambda r: -r["img_per_s"])
    assert (f"- dcgan, batch 8, fp32: {fast['backend']} ({fast['mode']}) is {fast['img_per_s'] / slow['img_per_s']:.2f}x "
            f"faster than {slow['backend']} ({slow['mode']})." in report)
    assert result["machine"]["cpu"] in report
    assert "![img/s per configuration](img_per_s.png)" in report


def test_plot_has_one_bar_per_configuration(bench):
    """Bars of equal height: each backend's pixels in its colour scale with the img/s it measured."""
    from PIL import Image

    out, result = bench
    image = np.asarray(Image.open(out / "img_per_s.png").convert("RGB")).astype(int)
    assert image.shape == (round((1.2 + 0.32 * 3) * 100), 800, 3)
    colour_pixels = {b: int((np.abs(image - rgb).max(axis=-1) <= 8).sum())
                     for b, rgb in (("torch", (238, 76, 44)), ("tf", (255, 143, 0)))}
    rates = {b: sum(r["img_per_s"] for r in result["rows"] if r["backend"] == b) for b in colour_pixels}
    assert colour_pixels["torch"] / colour_pixels["tf"] == pytest.approx(rates["torch"] / rates["tf"], rel=0.2)
    assert (out / "img_per_s.svg").read_text().lstrip().startswith("<?xml")


def test_failed_configuration_is_reported_not_raised(tmp_path):
    corrupt = tmp_path / "bad-data" / "mnist" / "train-images-idx3-ubyte.gz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x1f\x8b truncated")  # found before the built-in copy
    result = run(["dcgan"], ["torch"], ["eager"], [8], steps=1, warmup=1, out=tmp_path / "o",
                 data_dir=tmp_path / "bad-data")
    (row,) = result["rows"]
    assert "train-images-idx3-ubyte.gz: corrupt or truncated gzip" in row["error"]
    assert "failed:" in (tmp_path / "o" / "report.md").read_text()


def test_refuses_a_used_output_directory(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("x")
    with pytest.raises(GanbenchError, match="is not empty"):
        run(["dcgan"], ["torch"], ["eager"], [8], 1, 1, tmp_path / "o")


@pytest.fixture(scope="module")
def quality(tmp_path_factory, data_dir, quick_classifier):
    from ganbench.bench.report import run_quality

    out = tmp_path_factory.mktemp("quality") / "out"
    return out, run_quality(["dcgan"], ["torch", "tf"], ["default"], minutes=0.1, evals=2, eval_n=300, out=out,
                            data_dir=data_dir)


def test_quality_runs_are_complete_and_start_from_the_same_init(quality):
    out, result = quality
    assert json.loads((out / "quality.json").read_text()) == result
    runs = result["runs"]
    assert [(r["backend"], r["mode"]) for r in runs] == [("torch", "eager"), ("tf", "graph")], runs
    for r in runs:
        curve = r["curve"]
        assert len(curve) == 3 and curve[0]["seconds"] == 0 and curve[0]["step"] == 0
        assert curve[1]["seconds"] >= 3.0 and curve[2]["seconds"] >= 6.0 and curve[2]["step"] == r["steps"] > 0
        assert all(a["step"] < b["step"] and a["seconds"] < b["seconds"] for a, b in zip(curve, curve[1:]))
        assert all(np.isfinite(p["fid"]) and p["fid"] > 0 for p in curve)
    # the same init weights and fixed noise: the untrained generators score alike (one float32
    # forward each, ~1e-5 apart, so only pixels at a rounding boundary of the uint8 images differ)
    assert runs[0]["curve"][0]["fid"] == pytest.approx(runs[1]["curve"][0]["fid"], rel=1e-3)


def test_quality_report_and_plot(quality):
    from PIL import Image

    out, result = quality
    report = (out / "quality.md").read_text()
    assert "![dcgan](quality-dcgan.png)" in report and report.count("| dcgan |") == 2
    image = np.asarray(Image.open(out / "quality-dcgan.png").convert("RGB"))
    assert image.shape == (400, 640, 3)
    for colour in ((238, 76, 44), (255, 143, 0)):  # one line per run
        assert (image == colour).all(axis=2).sum() > 50


def test_biggan_step_is_timed_at_a_reduced_width(tmp_path):
    """The real BigGAN step of its preset (n_dis 5, fresh G batch, EMA), at --width; img/s counts
    the real images a step consumes, n_dis included, as the training log does."""
    from binary_files import write_cifar

    write_cifar(tmp_path / "data", records_per_file=40)
    result = run(["biggan_cifar10"], ["torch"], ["eager"], [8], steps=1, warmup=1, out=tmp_path / "o",
                 data_dir=tmp_path / "data", width=0.0625)
    (row,) = result["rows"]
    assert "error" not in row, row.get("error")
    assert (row["model"], row["width"], row["batch_size"]) == ("biggan", 0.0625, 8)
    assert row["step"] == "alternating, n_dis 5, loss hinge, G batch 64"
    assert row["img_per_s"] == pytest.approx(8 * 5 / row["median_step_s"])


def test_each_backend_gets_only_the_modes_it_has():
    """graph is TensorFlow's alone and cudagraphs PyTorch's: asked for both backends, each mode runs
    only in its own, in the order asked."""
    assert combinations(["dcgan"], ["torch", "tf"], ["eager", "graph", "cudagraphs", "compiled"]) == [
        ("dcgan", "torch", "eager"), ("dcgan", "torch", "cudagraphs"), ("dcgan", "torch", "compiled"),
        ("dcgan", "tf", "eager"), ("dcgan", "tf", "graph"), ("dcgan", "tf", "compiled")]
