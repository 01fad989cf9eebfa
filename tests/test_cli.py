"""Bad input: one line on stderr, exit code 2, no traceback, nothing overwritten."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from ganbench import checkpoint
from ganbench.cli import main
from ganbench.config import TrainConfig
from ganbench.data import catalog
from ganbench.training import loop


def cli_error(capsys, *argv):
    """Run the CLI, expecting a bad-input failure; return its single stderr line."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--model", "stylegan", "unknown model 'stylegan' (choose from dcgan, dcgan_pytorch_example, dcgan_tf_tutorial, "
         "sngan_cnn, sngan_resnet, wgan_gp_resnet, biggan)"),
        ("--dataset", "cifar", "unknown dataset 'cifar' (choose from mnist, fashion-mnist, cifar10, stl10, folder)"),
        ("--backend", "jax", "unknown backend 'jax' (choose from torch, tf)"),
        ("--steps", "0", "argument --steps: must be positive, got 0"),
        ("--batch-size", "-4", "argument --batch-size: must be positive, got -4"),
        ("--steps", "ten", "argument --steps: expected an integer, got 'ten'"),
        ("--seed", "-1", "argument --seed: must be 0 or positive, got -1"),
        ("--eval-every", "-5", "argument --eval-every: must be 0 or positive, got -5"),
        ("--loss", "wasserstein", "unknown loss 'wasserstein' (choose from ns, minimax, hinge, wgan-gp, rpgan, ls)"),
        ("--lr-decay", "cosine", "unknown lr-decay 'cosine' (choose from none, linear)"),
        ("--width", "0", "argument --width: must be positive and finite, got 0.0"),
        ("--channels", "2", "channels must be 1 or 3, got 2"),
        ("--beta1", "1.0", "beta1 must be in [0, 1), got 1.0"),
        ("--preset", "biggan", "unknown preset 'biggan' (choose from biggan_cifar10, biggan_cpu, dcgan, dcgan_pytorch_example, "
         "dcgan_tf_tutorial, sngan_cifar10, sngan_cnn_cifar10, sngan_cpu, sngan_stl10, wgan_gp_cifar10, or give a .json file)"),
        ("--update", "lockstep", "unknown update 'lockstep' (choose from alternating, simultaneous)"),
        ("--adam-eps-form", "paper", "unknown adam-eps-form 'paper' (choose from torch, keras)"),
        ("--n-dis", "2", "update 'simultaneous' needs n-dis 1, batch-size-g 0 and a loss other "
         "than wgan-gp"),
        ("--dataset", "folder", "dataset 'folder' needs --image-dir, and --image-dir needs dataset 'folder'"),
        ("--image-size", "64", "sngan_cnn is defined at 32x32 and 48x48, not 64x64"),
    ],
)
def test_bad_train_options(capsys, tmp_path, option, value, message):
    extra = {"--image-size": ["--model", "sngan_cnn"], "--n-dis": ["--update", "simultaneous"]}.get(option, [])
    line = cli_error(capsys, "train", option, value, *extra, "--out", str(tmp_path / "run"))
    assert line.endswith(message)
    assert not (tmp_path / "run").exists()


def test_missing_data(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_NO_DOWNLOAD", "")  # on; --no-download sets it, undone after the test
    monkeypatch.setitem(catalog.DATASETS, "fashion-mnist", dataclasses.replace(catalog.FASHION_MNIST, extra_dirs=()))
    line = cli_error(capsys, "train", "--dataset", "fashion-mnist", "--no-download", "--data-dir",
                     str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"))
    assert line.startswith(
        f"ganbench: error: fashion-mnist: train-images-idx3-ubyte.gz not found in {tmp_path}/nowhere/fashion-mnist; "
        "downloads are off (--no-download); to provide it: ")
    assert not (tmp_path / "run").exists() and not (tmp_path / "nowhere").exists()


def test_corrupt_data(capsys, tmp_path, mnist_dir):
    shutil.copytree(mnist_dir, tmp_path / "data" / "mnist")
    path = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: 1 << 20])
    line = cli_error(capsys, "train", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"))
    assert line == f"ganbench: error: {path}: corrupt or truncated gzip file (Compressed file ended before the end-of-stream marker was reached)"
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "run"
    loop.train(TrainConfig(steps=2, sample_every=1, checkpoint_every=1), out, data_dir=data_dir, progress=False)
    return out


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_run_is_not_overwritten(capsys, finished_run, data_dir):
    before = snapshot(finished_run)
    line = cli_error(capsys, "train", "--out", str(finished_run), "--data-dir", str(data_dir))
    assert line == f"ganbench: error: output directory {finished_run} already holds another run (use --resume, or another --out)"
    assert snapshot(finished_run) == before


def test_resume_cannot_change_the_recipe(capsys, finished_run, data_dir):
    before = snapshot(finished_run)
    line = cli_error(capsys, "train", "--resume", "--out", str(finished_run), "--lr", "0.1", "--seed", "3")
    assert line == (f"ganbench: error: cannot resume the run in {finished_run} with another recipe: "
                    "lr_g 0.0002 -> 0.1; lr_d 0.0002 -> 0.1; seed 0 -> 3")
    assert snapshot(finished_run) == before


def test_resume_without_a_run(capsys, tmp_path):
    line = cli_error(capsys, "train", "--resume", "--out", str(tmp_path))
    assert line == f"ganbench: error: cannot resume: {tmp_path}/config.json not found"


def test_unreadable_checkpoint(capsys, tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    line = cli_error(capsys, "sample", "--checkpoint", str(bad), "--out", str(tmp_path / "g.png"))
    assert line.startswith(f"ganbench: error: {bad}: unreadable checkpoint")
    assert not (tmp_path / "g.png").exists()


def test_incompatible_checkpoint(capsys, tmp_path, finished_run):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    src = checkpoint.resolve(finished_run)
    with safe_open(str(src), framework="numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["ganbench"])
    meta["spec_hash"] = "0" * 16
    bad = tmp_path / "old.safetensors"
    save_file(tensors, str(bad), metadata={"ganbench": json.dumps(checkpoint.with_digest(meta))})
    line = cli_error(capsys, "sample", "--checkpoint", str(bad), "--out", str(tmp_path / "g.png"))
    assert line == f"ganbench: error: {bad}: incompatible checkpoint, written for another version of 'dcgan'"


def test_sample_refuses_jpeg(capsys, tmp_path, finished_run):
    line = cli_error(capsys, "sample", "--checkpoint", str(finished_run), "--out", str(tmp_path / "g.jpg"))
    assert line == f"ganbench: error: --out must name a .png file, got {tmp_path}/g.jpg"


def test_sample_writes_png(capsys, tmp_path, finished_run):
    from PIL import Image

    assert main(["sample", "--checkpoint", str(finished_run), "--backend", "tf", "--n", "9",
                 "--out", str(tmp_path / "g.png")]) == 0
    image = Image.open(tmp_path / "g.png")
    assert image.format == "PNG" and image.size == (104, 104)  # 3 x 3 tiles of 32 px + 2 px borders


def test_help_states_the_defaults_of_the_config():
    """Each option's help names the default that TrainConfig really has."""
    import re

    out = subprocess.run([sys.executable, "-m", "ganbench", "train", "--help"], capture_output=True, text=True,
                         timeout=120).stdout
    flat = " ".join(out.split("options:", 1)[1].split())  # the option list, after the usage line
    defaults = TrainConfig()
    for option, field in (("--steps", "steps"), ("--batch-size", "batch_size"), ("--n-dis", "n_dis"),
                          ("--seed", "seed"), ("--beta1", "beta1"), ("--loss", "loss"), ("--model", "model"),
                          ("--sample-every", "sample_every"), ("--checkpoint-every", "checkpoint_every")):
        help_text = re.search(rf"{option} \S+ (.*?)(?= --[a-z]|$)", flat).group(1)
        assert f"default {getattr(defaults, field)}" in help_text, option
    assert "D updates per G update" in flat


def test_console_script_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run(["ganbench", "train", "--model", "nope", "--out", str(tmp_path / "r")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == ("ganbench: error: unknown model 'nope' (choose from dcgan, dcgan_pytorch_example, "
                             "dcgan_tf_tutorial, sngan_cnn, sngan_resnet, wgan_gp_resnet, biggan)\n")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backends", "torch,jax"], "unknown backend 'jax' (choose from torch, tf)"),
        (["--modes", "fast"], "unknown mode 'fast' (choose from default, eager, graph, compiled, cudagraphs)"),
        (["--batch-sizes", "64,-1"], "--batch-sizes: must be 0 or positive, got -1"),
        (["--backends", "tf", "--modes", "cudagraphs"], "no mode among cudagraphs runs in tf (graph is tf only, "
         "cudagraphs torch only)"),
        (["--presets", "dcgan,stylegan"], "unknown preset 'stylegan' (choose from biggan_cifar10, biggan_cpu, dcgan, dcgan_pytorch_example, "
         "dcgan_tf_tutorial, sngan_cifar10, sngan_cnn_cifar10, sngan_cpu, sngan_stl10, wgan_gp_cifar10)"),
    ],
)
def test_bad_bench_options(capsys, tmp_path, args, message):
    line = cli_error(capsys, "bench", *args, "--out", str(tmp_path / "b"))
    assert line == f"ganbench: error: {message}"
    assert not (tmp_path / "b").exists()


def test_download_of_an_archive_that_fails_its_checksum(capsys, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "cifar-10-binary.tar.gz").write_bytes(b"not the archive")
    from test_data import serve

    with serve(served) as url:
        code = main(["data", "download", "cifar10", "--data-dir", str(tmp_path / "root"), "--base-url", url])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the (transient) progress bar
    assert line.startswith(f"ganbench: error: download of {url}cifar-10-binary.tar.gz failed its checksum: nothing was kept")
    assert not list((tmp_path / "root" / "cifar10").iterdir())

def test_preset_with_resume_is_refused(capsys, finished_run):
    line = cli_error(capsys, "train", "--resume", "--out", str(finished_run), "--preset", "sngan_cifar10")
    assert line == "ganbench: error: --resume continues the run's saved config; drop --preset"


def test_resume_refuses_a_new_loss(capsys, finished_run):
    line = cli_error(capsys, "train", "--resume", "--out", str(finished_run), "--loss", "hinge")
    assert line == f"ganbench: error: cannot resume the run in {finished_run} with another recipe: loss 'ns' -> 'hinge'"


def test_resume_defaults_to_the_default_run_dir(capsys, tmp_path, monkeypatch, finished_run):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished_run, tmp_path / "runs" / "dcgan-mnist-torch")
    assert main(["train", "--resume", "--steps", "3", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(
        "done: 3 steps; checkpoint runs/dcgan-mnist-torch/checkpoints/step_0000003.safetensors")


def test_resume_refuses_fewer_steps_and_changes_nothing(capsys, finished_run):
    before = snapshot(finished_run)
    line = cli_error(capsys, "train", "--resume", "--out", str(finished_run), "--steps", "1")
    assert line == (f"ganbench: error: the run in {finished_run} is at step 2: --steps 1 would undo training "
                    "(give more steps to continue)")
    assert snapshot(finished_run) == before


def test_resume_at_the_last_step_writes_nothing(capsys, finished_run):
    before = snapshot(finished_run)
    assert main(["train", "--resume", "--out", str(finished_run), "--steps", "2", "--no-progress"]) == 0
    assert snapshot(finished_run) == before


def test_config_records_the_mode_that_ran(finished_run):
    assert json.loads((finished_run / "config.json").read_text())["mode"] == "eager"  # torch's default
    assert checkpoint.read_metadata(checkpoint.resolve(finished_run))["config"]["mode"] == "eager"


def test_resume_in_the_other_backend_takes_its_default_mode(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["train", "--resume", "--out", str(run), "--backend", "tf", "--steps", "3", "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["backend"], config["mode"]) == ("tf", "graph")


def test_sample_writes_beside_the_checkpoint_by_default(capsys, tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["sample", "--checkpoint", str(run), "--n", "4"]) == 0
    assert (run / "sample.png").is_file()
    assert capsys.readouterr().out == f"wrote {run}/sample.png\n"


def test_tensorflow_import_is_quiet(tmp_path):
    """No C++ start-up notes on stderr unless the user sets TF_CPP_MIN_LOG_LEVEL (here: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", "import ganbench.backends.tf.step"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stderr == ""


@pytest.mark.parametrize("line, level, hidden", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", 2, True),
    ("I0000 00:00:1795946985.672682    2727 port.cc:153] oneDNN custom operations are on.", 2, True),
    ("I0000 00:00:1795946985.672682    2727 port.cc:153] oneDNN custom operations are on.", 0, False),
    ("W0000 00:00:1795946985.672682    2727 x.cc:1] a warning", 1, False),
    ("E0000 00:00:1795946985.672682    2727 x.cc:1] an error", 2, False),
    ("Traceback (most recent call last):", 3, False),
])
def test_native_log_filter_follows_the_level(line, level, hidden):
    from ganbench.backends.tf import hidden as is_hidden

    assert is_hidden(line, level) is hidden
