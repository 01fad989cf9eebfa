"""Resume continues exactly: 10 steps straight == 5 steps + resume + 5 steps, bit for bit."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ganbench import checkpoint
from ganbench.config import TrainConfig
from ganbench.training import loop


def run(config, out, data_dir, resume=False):
    return loop.train(config, out, resume=resume, data_dir=data_dir, progress=False)


def load_tensors(path):
    state = checkpoint.load(path).state
    return checkpoint.flatten_state(state)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_resume_is_exact(tmp_path, data_dir, backend):
    config = TrainConfig(backend=backend, steps=10, sample_every=5, checkpoint_every=5, log_every=1)
    straight = run(config, tmp_path / "straight", data_dir)
    run(config.replace(steps=5), tmp_path / "split", data_dir)
    resumed = run(config, tmp_path / "split", data_dir, resume=True)
    assert_same(load_tensors(straight), load_tensors(resumed))
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))
    straight_log = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert [r["g_loss"] for r in log] == [r["g_loss"] for r in straight_log]
    assert sorted(p.name for p in (tmp_path / "split" / "samples").iterdir()) == [
        "step_0000005.png", "step_0000010.png"]


def test_kill_9_then_resume_is_exact(tmp_path, data_dir):
    """A real kill -9 in the middle of training, then --resume, matches an uninterrupted run."""
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "ganbench", "train", "--backend", "torch", "--steps", "12",
            "--checkpoint-every", "2", "--sample-every", "100", "--out", str(out), "--no-progress",
            "--data-dir", str(data_dir)]
    # one thread in both compared runs (tests/test_faults.py says why)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    pointer = out / "checkpoints" / checkpoint.LATEST
    # wait for the `latest` pointer (moved after the checkpoint file is complete) to reach step 4
    while not (pointer.exists() and pointer.read_text().strip() >= "step_0000004.safetensors"):
        assert proc.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = checkpoint.resolve(out)
    assert 4 <= int(latest.stem.split("_")[1]) < 12
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    done = subprocess.run([*args[:args.index("--out") + 1], str(straight), *args[args.index("--out") + 2:]],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_same(load_tensors(straight), load_tensors(out))


def test_divergence_stops_and_keeps_the_last_checkpoint(tmp_path, data_dir, monkeypatch, capsys):
    """A NaN loss at step 3 stops the run with the step and network named; step 2's checkpoint
    stays loadable and the CLI exits with code 3."""
    from ganbench.backends.torch import step as torch_step
    from ganbench.cli import main

    original, calls = torch_step.GAN.train_step, []

    def diverging(self, inputs):
        losses = original(self, inputs)
        calls.append(1)
        return {**losses, "g_loss": float("nan")} if len(calls) == 3 else losses

    monkeypatch.setattr(torch_step.GAN, "train_step", diverging)
    out = tmp_path / "run"
    code = main(["train", "--steps", "5", "--checkpoint-every", "2", "--out", str(out), "--no-progress",
                 "--data-dir", str(data_dir)])
    assert code == 3
    assert capsys.readouterr().err == "ganbench: error: non-finite g_loss (nan) in network G at step 3\n"
    assert checkpoint.resolve(out).name == "step_0000002.safetensors"
    assert load_tensors(out)["G.fc.weight"].shape == (8192, 100)
