"""Faults injected for real: signals to a training process, a time limit, kill -9 at random
moments, corrupt checkpoints on disk, a second process on the same run, writes that fail
(RLIMIT_FSIZE, EIO), a torn log line. Each ends with nothing lost: a loadable checkpoint, one line
on stderr, the documented exit code, and an exact resume.

Every wait on a process is bounded; every process started is killed if a test fails. Runs that are
compared bit for bit all run as processes with one thread each: with two threads on a loaded
2-core machine, an in-process run and a subprocess were once seen to differ in the last bits
(cause not pinned down), which Adam's first steps amplify."""

import errno
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ganbench import checkpoint
from ganbench.errors import GanbenchError

WAIT_S = 180  # the longest any test waits for a process (start-up with TensorFlow included)
SMALL = ["--batch-size", "16", "--sample-every", "100000", "--log-every", "1", "--no-progress"]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def train_args(out, data_dir, *extra):
    return [sys.executable, "-m", "ganbench", "train", "--out", str(out), "--data-dir", str(data_dir), *SMALL, *extra]


def train(out, data_dir, *extra, **kwargs):
    """A `ganbench train` process run to its end (bounded)."""
    kwargs = {"capture_output": True, "text": True, "timeout": WAIT_S, "env": ONE_THREAD, **kwargs}
    return subprocess.run(train_args(out, data_dir, *extra), **kwargs)


def straight_run(tmp_path, data_dir, steps: int, backend: str = "torch") -> Path:
    """The uninterrupted run a faulted one must end equal to."""
    done = train(tmp_path / "straight", data_dir, "--steps", str(steps), "--backend", backend)
    assert done.returncode == 0, done.stderr
    return tmp_path / "straight"


def ganbench_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith("ganbench:")]


@pytest.fixture
def processes():
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT_S)


def start(processes, args, **kwargs):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ONE_THREAD,
                            **kwargs)
    processes.append(proc)
    return proc


def wait_for_steps(proc, out: Path, steps: int) -> None:
    """Until the run's log holds `steps` records (bounded)."""
    deadline = time.monotonic() + WAIT_S
    log = out / "log.jsonl"
    while not (log.is_file() and len(log.read_text().splitlines()) >= steps):
        assert proc.poll() is None, f"training ended early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "training did not start in time"
        time.sleep(0.05)


def weights(path) -> dict:
    return checkpoint.flatten_state(checkpoint.load(path).state)


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert np.array_equal(wa[name], wb[name]), name


@pytest.mark.parametrize("backend, sig, code", [("torch", signal.SIGTERM, 143), ("tf", signal.SIGINT, 130)])
def test_a_signal_stops_after_the_step_with_a_checkpoint(tmp_path, data_dir, processes, backend, sig, code):
    out = tmp_path / "run"
    proc = start(processes, train_args(out, data_dir, "--backend", backend, "--steps", "100000",
                                       "--checkpoint-every", "100000"))
    wait_for_steps(proc, out, 3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == code, stderr
    (line,) = ganbench_lines(stderr)
    path = checkpoint.resolve(out)
    step = checkpoint.load(path).meta["step"]
    assert 3 <= step < 100000
    assert line == (f"ganbench: stopped by {sig.name} after step {step}; checkpoint {path}; "
                    f"continue with: ganbench train --resume --out {out}")
    done = train(out, data_dir, "--backend", backend, "--steps", str(step + 2), "--resume")
    assert done.returncode == 0, done.stderr  # the stopped run resumes exactly
    assert_same_weights(straight_run(tmp_path, data_dir, step + 2, backend), out)


def test_a_second_signal_ends_the_process_at_once(tmp_path, data_dir, processes):
    """The first SIGTERM asks for a stop after the step; a second one takes SIGTERM's default
    action at once. The test sends SIGTERM every 20 ms until the process ends: signals that arrive
    while Python is inside one long C call (a backward pass) reach its handler as one, so a single
    second signal 50 ms later was sometimes never seen as a second. The run stays resumable."""
    out = tmp_path / "run"
    proc = start(processes, train_args(out, data_dir, "--steps", "100000", "--checkpoint-every", "1",
                                       "--batch-size", "64"))
    wait_for_steps(proc, out, 2)
    deadline = time.monotonic() + WAIT_S
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
    proc.communicate(timeout=WAIT_S)
    assert proc.returncode == -signal.SIGTERM
    step = checkpoint.load(out).meta["step"]
    done = train(out, data_dir, "--steps", str(step + 1), "--batch-size", "64", "--resume")
    assert done.returncode == 0, done.stderr


def test_the_time_limit_stops_before_it_with_exit_0(tmp_path, data_dir):
    out = tmp_path / "run"
    done = train(out, data_dir, "--steps", "100000", "--time-limit", "0.2")
    assert done.returncode == 0, done.stderr
    (line,) = ganbench_lines(done.stderr)
    path = checkpoint.resolve(out)
    step = checkpoint.load(path).meta["step"]
    assert line.startswith(f"ganbench: time limit reached after step {step}; checkpoint {path}")
    records = [json.loads(r) for r in (out / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == step and 6.0 < records[-1]["elapsed_s"] < 12.0  # 0.2 min


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0x01  # inside the tensor data, past the JSON header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit flip", "truncated"])
def test_a_damaged_checkpoint_is_refused_and_resume_takes_the_one_before(tmp_path, data_dir, capsys, damage):
    from ganbench.cli import main

    out = tmp_path / "run"
    assert train(out, data_dir, "--steps", "4", "--checkpoint-every", "2").returncode == 0
    newest = checkpoint.checkpoint_path(out, 4)
    if damage == "bit flip":
        flip_one_byte(newest)
        reason = "corrupt checkpoint (its tensors do not match the sha256 recorded when it was written)"
    else:
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
        reason = "unreadable checkpoint"
    with pytest.raises(GanbenchError, match=re.escape(reason)):
        checkpoint.load(newest)
    for command in (["sample", "--checkpoint", str(out)], ["eval", "--checkpoint", str(out), "--n", "10"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"ganbench: error: {newest}: {reason}")
    resumed = train(out, data_dir, "--steps", "6", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    (line,) = ganbench_lines(resumed.stderr)
    assert line.startswith(f"ganbench: skipped step_0000004.safetensors: {newest}: {reason}")
    assert_same_weights(straight_run(tmp_path, data_dir, 6), out)


def test_a_second_process_on_a_running_run_is_refused(tmp_path, data_dir, processes):
    out = tmp_path / "run"
    first = start(processes, train_args(out, data_dir, "--steps", "100000", "--checkpoint-every", "1"))
    wait_for_steps(first, out, 2)
    for extra in (["--resume"], []):
        second = train(out, data_dir, "--steps", "100001", *extra)
        assert second.returncode == 2
        (line,) = ganbench_lines(second.stderr)
        expected = (f"is in use by another ganbench process (pid {first.pid})" if extra
                    else "already holds another run")
        assert expected in line, line
    first.kill()  # kill -9: the kernel releases its lock
    first.wait(timeout=WAIT_S)
    step = checkpoint.load(out).meta["step"]
    resumed = train(out, data_dir, "--steps", str(step + 1), "--resume")
    assert resumed.returncode == 0, resumed.stderr


def limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_failed_write_keeps_the_last_checkpoint(tmp_path, data_dir):
    """A write past RLIMIT_FSIZE fails with EFBIG (Python ignores SIGXFSZ), as a full disk fails
    with ENOSPC: one line naming the file, exit 2, no temporary file left, the previous
    checkpoint still `latest` and loadable; resuming later works."""
    out = tmp_path / "run"
    assert train(out, data_dir, "--steps", "2").returncode == 0
    before = checkpoint.resolve(out)
    size = before.stat().st_size
    failed = train(out, data_dir, "--steps", "4", "--checkpoint-every", "1", "--resume",
                   preexec_fn=limit_file_size(size // 2))
    assert failed.returncode == 2
    (line,) = ganbench_lines(failed.stderr)
    assert line == f"ganbench: error: {checkpoint.checkpoint_path(out, 3)} {os.strerror(errno.EFBIG)}"
    assert checkpoint.resolve(out) == before and checkpoint.load(before).meta["step"] == 2
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    resumed = train(out, data_dir, "--steps", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(straight_run(tmp_path, data_dir, 4), out)


KILLS = 5  # per backend: 10 in all (each a process start: 20 took 8 minutes of CI)


def last_logged_step(out: Path) -> int:
    log = out / "log.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    steps = [json.loads(line)["step"] for line in lines if line.endswith("}")]
    return max(steps, default=0)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_kill_9_at_random_moments_then_resume_ends_with_the_same_weights(tmp_path, data_dir, processes, backend):
    """KILLS kill -9s of one run, each at a random moment (fixed seed) once its process has taken a
    step, a checkpoint written every step (so kills land inside checkpoint writes too), each
    followed by --resume; then the run completes equal, bit for bit, to one never killed. A kill
    before the first checkpoint leaves a run that --resume starts from step 0."""
    rng = random.Random(11)
    out, steps = tmp_path / "run", 60  # a few steps a kill: 200 spent 5 minutes on checkpoint writes
    args = ("--backend", backend, "--steps", str(steps), "--checkpoint-every", "1")
    for kill in range(KILLS):
        # What --resume will start from: a kill between a step file's rename and the move of
        # `latest` leaves a newer file than `latest` names, or no `latest` at all.
        resumed_from = checkpoint.load_newest_valid(out)[0].meta["step"] if checkpoint.stored(out) else 0
        # the log may hold records past that checkpoint (killed between the two), which --resume drops
        logged_before = max(resumed_from, last_logged_step(out))
        proc = start(processes, train_args(out, data_dir, *args, *(["--resume"] if kill else [])))
        deadline = time.monotonic() + WAIT_S
        while last_logged_step(out) <= logged_before:  # this process has taken a step
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no step in time"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=WAIT_S)
        assert proc.returncode == -9  # killed, not finished
    done = train(out, data_dir, *args, "--resume")
    assert done.returncode == 0, done.stderr
    assert_same_weights(straight_run(tmp_path, data_dir, steps, backend), out)


EIO_ON_PNG = """
import errno, os, runpy, sys
real_fsync = os.fsync
def failing_fsync(fd):
    if ".png." in os.readlink(f"/proc/self/fd/{fd}"):  # the temporary file of a grid
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    return real_fsync(fd)
os.fsync = failing_fsync
sys.argv = ["ganbench", *sys.argv[1:]]
runpy.run_module("ganbench", run_name="__main__")
"""


def test_an_io_error_writing_a_grid_stops_cleanly(tmp_path, data_dir):
    """EIO while a sample grid is written (os.fsync patched in the training process to fail for
    PNGs): one line naming the grid, exit 2, no temporary file; the checkpoint of the same step is
    written only after the grid, so `latest` is the step before and resuming works."""
    out = tmp_path / "run"
    assert train(out, data_dir, "--steps", "2", "--checkpoint-every", "1").returncode == 0
    args = train_args(out, data_dir, "--steps", "4", "--checkpoint-every", "1", "--sample-every", "1", "--resume")
    failed = subprocess.run([sys.executable, "-c", EIO_ON_PNG, *args[3:]], capture_output=True, text=True,
                            timeout=WAIT_S, env=ONE_THREAD)
    assert failed.returncode == 2, failed.stderr
    (line,) = ganbench_lines(failed.stderr)
    assert line == f"ganbench: error: {out / 'samples' / 'step_0000003.png'} {os.strerror(errno.EIO)}"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert checkpoint.load(out).meta["step"] == 2
    resumed = train(out, data_dir, "--steps", "4", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(straight_run(tmp_path, data_dir, 4), out)


def test_a_log_line_torn_by_a_crash_is_skipped_on_resume(tmp_path, data_dir):
    out = tmp_path / "run"
    assert train(out, data_dir, "--steps", "2", "--checkpoint-every", "1").returncode == 0
    with (out / "log.jsonl").open("a") as log:
        log.write('{"step": 3, "d_lo')  # the disk filled mid-line
    resumed = train(out, data_dir, "--steps", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
