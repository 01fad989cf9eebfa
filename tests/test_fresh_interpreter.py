"""Every documented API call and every CLI command, each in a fresh interpreter with nothing
imported before ganbench, as a user's script or shell runs it (pytest itself imports modules a
plain script does not: importlib.util hid a crash of load_generator this way)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TIMEOUT = 600  # seconds for any one process: a hang fails the test


# A plain (non-editable) install imports no importlib.util at start-up; an editable install's
# .pth finder does, which hid the crash: the fresh interpreter forgets it first.
PLAIN_START = ("import importlib, sys\nsys.modules.pop('importlib.util', None)\n"
               "if hasattr(importlib, 'util'):\n    del importlib.util\n")


def fresh(code: str, cwd: Path, env: dict | None = None) -> str:
    """stdout of `python -c code` in a fresh interpreter; any failure shows its stderr."""
    done = subprocess.run([sys.executable, "-c", PLAIN_START + code], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "OMP_NUM_THREADS": "2", **(env or {})})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def command(*argv, cwd: Path, expect: int = 0) -> subprocess.CompletedProcess:
    """The `ganbench` console script, as a shell runs it."""
    done = subprocess.run(["ganbench", *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == expect and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir) -> Path:
    """A 2-step class-conditional biggan (width 1/16) with an EMA, trained by ganbench.train."""
    out = tmp_path_factory.mktemp("fresh") / "run"
    printed = fresh(f"import ganbench\nprint(ganbench.train('biggan_cpu', {str(out)!r}, dataset='mnist', width=0.0625, "
                    "steps=2, batch_size=8, log_every=1, sample_every=1000, checkpoint_every=1000, ema_start=0, "
                    "progress=False))", out.parent)
    assert printed.strip() == str(out / "checkpoints" / "step_0000002.safetensors")
    return out


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_load_generator_and_its_three_samplers(run, tmp_path, backend):
    fresh(f"import ganbench, numpy\n"
          f"g = ganbench.load_generator({str(run)!r}, backend={backend!r})\n"
          f"numpy.savez('out.npz', sample=g.sample(6, seed=1), classes=g.sample_classes(2), "
          f"between=g.interpolate(5, label=3), one=g.sample(4, label=7))\n", tmp_path)
    with np.load(tmp_path / "out.npz") as out:
        assert out["sample"].shape == (6, 32, 32, 1) and out["sample"].dtype == np.uint8
        assert out["classes"].shape == (20, 32, 32, 1) and out["between"].shape == (5, 32, 32, 1)
        assert out["one"].shape == (4, 32, 32, 1)
        np.save(tmp_path.parent / f"sample-{backend}.npy", out["sample"])


def test_preset_names_and_train_config(tmp_path):
    printed = fresh("import ganbench, json, sys\n"
                    "config = ganbench.TrainConfig.from_dict(json.loads(ganbench.TrainConfig().replace(steps=7).to_json()))\n"
                    "print('dcgan' in ganbench.preset_names(), config.validate().steps, "
                    "'torch' in sys.modules or 'tensorflow' in sys.modules)\n", tmp_path)
    assert printed.split() == ["True", "7", "False"]


def test_both_backends_sampled_the_same_images(run, tmp_path):
    """In fresh interpreters too, the checkpoint samples alike in both (float32, max 1 grey level)."""
    saved = [tmp_path.parent / f"sample-{b}.npy" for b in ("torch", "tf")]
    if not all(p.is_file() for p in saved):
        pytest.skip("needs test_load_generator_and_its_three_samplers of both backends")
    torch_images, tf_images = (np.load(p).astype(int) for p in saved)
    assert np.abs(torch_images - tf_images).max() <= 1


def test_evaluate_save_grid_plot_runs_and_export(run, tmp_path, quick_classifier):
    printed = fresh(f"import ganbench, numpy\n"
                    f"images = numpy.zeros((50, 28, 28, 1), numpy.uint8)\n"
                    f"result = ganbench.evaluate(images, 'mnist', metrics='fid,score')\n"
                    f"ganbench.save_grid(images[:16], 'grid.png')\n"
                    f"ganbench.plot_runs([{str(run)!r}], 'curves.png')\n"
                    f"ganbench.export({str(run)!r}, 'torchscript', 'exported')\n"
                    f"print(sorted(result['metrics']), result['protocol']['n'])\n", tmp_path)
    assert printed.strip() == "['fid', 'score', 'score_std'] 50"
    assert (tmp_path / "exported" / "generator.pt").is_file()
    for figure in ("grid.png", "curves.png", "exported/sample.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_cli_command(run, tmp_path, quick_classifier, data_dir):
    """train, sample, eval, plot, export, data download, classifier train, bench and --help."""
    command("--help", cwd=tmp_path)
    command("train", "--steps", 1, "--batch-size", 8, "--out", tmp_path / "t", "--no-progress", cwd=tmp_path)
    command("sample", "--checkpoint", run, "--classes", "--n", 2, "--out", tmp_path / "c.png", cwd=tmp_path)
    evaluated = command("eval", "--checkpoint", run, "--n", 100, "--metrics", "fid", "--out", tmp_path / "e.json",
                        cwd=tmp_path)
    assert "fid" in evaluated.stdout and (tmp_path / "e.json").is_file()
    command("plot", run, "--out", tmp_path / "p.png", cwd=tmp_path)
    exported = command("export", "--checkpoint", run, "--format", "onnx", "--out", tmp_path / "x", cwd=tmp_path)
    assert exported.stdout == f"wrote {tmp_path / 'x' / 'generator.onnx'} (model card and samples beside it)\n"
    cache = tmp_path / "cache"
    trained = subprocess.run(["ganbench", "classifier", "train", "--dataset", "mnist", "--epochs", "1",
                              "--train-images", "2000"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=TIMEOUT, env={**os.environ, "GANBENCH_CACHE": str(cache)})
    assert trained.returncode == 1 and "is BELOW the required 99.0%" in trained.stdout, trained.stderr[-3000:]
    assert (cache / "classifiers" / "mnist.safetensors").is_file()
    command("bench", "--presets", "dcgan", "--backends", "torch", "--modes", "eager", "--steps", 1, "--warmup", 1,
            "--batch-sizes", 8, "--out", tmp_path / "bench", cwd=tmp_path)
    assert (tmp_path / "bench" / "bench.json").is_file()


def test_data_download_from_a_local_server(tmp_path, mnist_dir):
    from test_data import serve

    served = tmp_path / "served"
    served.mkdir()
    for f in mnist_dir.glob("*.gz"):
        (served / f.name).write_bytes(f.read_bytes())
    with serve(served) as url:
        done = command("data", "download", "mnist", "--data-dir", tmp_path / "root", "--base-url", url, cwd=tmp_path)
    assert done.stdout.strip() == f"ready: {tmp_path / 'root' / 'mnist'}"
