"""matplotlib figures: each kind rendered from small JSON, checked as a PNG of the expected size
with the expected colours on it; `ganbench plot` on synthetic runs and on bad input."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib")

from ganbench import figures  # noqa: E402
from ganbench.cli import main  # noqa: E402
from ganbench.plot import labels, plot_runs, series  # noqa: E402

TORCH_RGB, TF_RGB = (0xEE, 0x4C, 0x2C), (0xFF, 0x8F, 0x00)


def row(backend, mode, rate, batch=64):
    median = batch / rate
    return {"preset": "dcgan", "backend": backend, "mode": mode, "batch_size": batch, "img_per_s": rate,
            "median_step_s": median, "iqr_step_s": 0.1 * median}


def pixels_of(png, rgb, tolerance=8) -> int:
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(image - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def check_png(path, size):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size
        grey = np.asarray(image.convert("L"))
    assert grey.std() > 10  # not blank


def test_bench_figure_png_and_svg(tmp_path):
    rows = [row("torch", "eager", 300), row("tf", "graph", 150), {"preset": "x", "backend": "tf", "mode": "eager",
                                                                  "batch_size": 0, "error": "failed"}]
    png, svg = figures.save(figures.bench_figure(rows), tmp_path / "b.png", tmp_path / "b.svg")
    check_png(png, (800, round((1.2 + 0.32 * 2) * figures.DPI)))  # the failed row draws no bar
    # the torch bar is twice the tf bar: about twice its pixels in its colour
    assert 1.6 < pixels_of(png, TORCH_RGB) / pixels_of(png, TF_RGB) < 2.4
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_quality_figure(tmp_path):
    curve = lambda scale: [{"seconds": s, "step": s * 4, "fid": scale * (100 - s)} for s in (0, 30, 60)]  # noqa: E731
    runs = [{"backend": "torch", "mode": "eager", "steps": 240, "curve": curve(1.0)},
            {"backend": "tf", "mode": "graph", "steps": 230, "curve": curve(0.5)}]
    (png,) = figures.save(figures.quality_figure(runs, "dcgan"), tmp_path / "q.png")
    check_png(png, (640, 400))
    assert pixels_of(png, TORCH_RGB) > 100 and pixels_of(png, TF_RGB) > 100


def test_recipes_figure(tmp_path):
    def curve(scale):
        return [{"train_minutes": m, "step": 1000 * m, "metrics": {"fid": scale / (m + 1)}} for m in (2, 5, 10)]

    runs = [{"recipe": recipe, "backend": backend, "seed": 0, "curve": curve(scale)}
            for recipe, scale in (("dcgan", 1000), ("sngan", 100)) for backend in ("torch", "tf")]
    runs[1]["curve"] = curve(3000)
    (png,) = figures.save(figures.recipes_figure(runs, "MNIST"), tmp_path / "r.png")
    check_png(png, (640, 400))
    assert pixels_of(png, TORCH_RGB) > 100 and pixels_of(png, TF_RGB) > 100


def test_smoothing_is_debiased_ema():
    np.testing.assert_allclose(figures.smooth(np.array([1.0, 0.0, 0.0]), 0.5), [1.0, 1 / 3, 1 / 7], rtol=1e-12)
    np.testing.assert_array_equal(figures.smooth(np.array([3.0, 5.0]), 0.0), [3.0, 5.0])


def write_run(path, backend, mode, records):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"backend": backend, "mode": mode}))
    (path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 9, "d_lo')


def records(shift):
    out = [{"step": s, "time": 0.0, "elapsed_s": 2.0 * s, "d_loss": 1.0 + shift, "g_loss": 2.0, "img_per_s": 100.0}
           for s in range(1, 9)]
    return out + [{"step": 4, "time": 0.0, "elapsed_s": 8.5, "eval/kid": 5.0 + shift, "eval/kid_std": 0.5},
                  {"step": 8, "time": 0.0, "elapsed_s": 16.5, "eval/kid": 3.0, "eval/kid_std": 0.25}]


@pytest.fixture
def two_runs(tmp_path):
    write_run(tmp_path / "a", "torch", "eager", records(0.0))
    write_run(tmp_path / "b", "tf", "graph", records(1.0))
    return [tmp_path / "a", tmp_path / "b"]


def test_series_reads_each_metric_against_steps_or_seconds(two_runs):
    from ganbench.plot import read_run

    config, recs = read_run(two_runs[1])  # the torn last line is skipped
    assert config["backend"] == "tf" and len(recs) == 10
    by_step = series(recs, "step")
    np.testing.assert_array_equal(by_step["eval/kid"][0], [4, 8])
    np.testing.assert_array_equal(by_step["eval/kid"][1], [6.0, 3.0])
    np.testing.assert_array_equal(series(recs, "elapsed_s")["eval/kid"][0], [8.5, 16.5])
    assert set(by_step) == {"d_loss", "g_loss", "img_per_s", "eval/kid", "eval/kid_std"}


def test_plot_runs_draws_one_panel_per_metric(two_runs, tmp_path):
    out = plot_runs(two_runs, tmp_path / "p.png", "seconds")  # d_loss, g_loss, img_per_s, eval/kid (std: band)
    check_png(out, (round(4.2 * 3 * figures.DPI), round((3.1 * 2 + 0.5) * figures.DPI)))
    out = plot_runs(two_runs, tmp_path / "one.png", metrics=["eval/kid"])
    check_png(out, (round(4.2 * figures.DPI), round((3.1 + 0.5) * figures.DPI)))


def test_labels_name_backend_mode_precision_and_tell_twins_apart(tmp_path):
    configs = [{"backend": "torch", "mode": "eager"}, {"backend": "torch", "mode": "eager"},
               {"backend": "tf", "mode": "graph", "precision": "bf16"}]
    assert labels([tmp_path / "r1", tmp_path / "r2", tmp_path / "r3"], configs) == [
        "torch eager fp32 (r1)", "torch eager fp32 (r2)", "tf graph bf16"]


@pytest.mark.parametrize("case, message", [
    ("missing", "not a run directory (no log.jsonl)"),
    ("empty", "log.jsonl: no log records yet"),
    ("metric", "unknown metric 'eval/fid': the runs log d_loss, g_loss, img_per_s, eval/kid, eval/kid_std"),
    ("suffix", "a figure is written as .png or .svg"),
])
def test_plot_bad_input_is_one_line(case, message, two_runs, tmp_path, capsys):
    run, out, extra = two_runs[0], tmp_path / "f.png", []
    if case == "missing":
        run = tmp_path / "nothing"
    elif case == "empty":
        run = tmp_path / "empty"
        run.mkdir()
        (run / "log.jsonl").write_text("")
    elif case == "metric":
        extra = ["--metrics", "d_loss,eval/fid"]
    else:
        out = tmp_path / "f.jpg"
    assert main(["plot", str(run), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()
