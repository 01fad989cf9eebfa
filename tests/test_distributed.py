"""Data-parallel training: N processes compute what one process computes.

Each replica runs as its own process (tests/distributed_worker.py) under the environment its
framework's launcher sets: torchrun's RANK/WORLD_SIZE/MASTER_* for torch, TF_CONFIG for tf.

Tolerances:
- FP64_STEP_RTOL: float64, 2 replicas with synchronised BatchNorm against 1 process after 3 steps,
  every weight, buffer, spectral-norm vector, Adam moment and EMA tensor, relative Frobenius norm
  (measured ~1e-14: the sums are split and regrouped, nothing else differs).
- FP32_LOSS_RTOL: float32, the first step's losses (one forward of the same numbers, the batch
  statistics summed in another order).
- FIRST_ADAM_STEP_BOUND: float32, after one step; Adam's first update is lr * g / (|g| + eps) per
  element, so two runs whose gradients differ by rounding differ by at most 2 lr where a gradient
  element's sign flips, and by rounding elsewhere (as tests/test_parity.py). Several float32 steps
  are not compared: rounding-level differences grow into full +-lr steps (see test_parity.py).
- Every wait on a process is bounded (PROCESS_TIMEOUT_S); processes left running are killed.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from ganbench import augment, distributed
from ganbench.config import TrainConfig
from ganbench.distributed import World, check_divides, shard_inputs
from ganbench.errors import GanbenchError
from ganbench.launch import worker_environments

sys.path.insert(0, str(Path(__file__).parent))
from distributed_cases import BATCH, case_setup, flat, global_inputs, run_case  # noqa: E402

FP64_STEP_RTOL = 1e-9
FP32_LOSS_RTOL = 1e-5
FIRST_ADAM_STEP_BOUND = 2 * (1 + 1e-6)  # in units of lr
PROCESS_TIMEOUT_S = 240
WORKER = Path(__file__).parent / "distributed_worker.py"
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}


def worker_envs(backend: str, nproc: int) -> list:
    return [{**env, **QUIET} for env in worker_environments(backend, nproc)]


def run_workers(backend, case, dtype, steps, sync_bn, out: Path, nproc=2, devices=1) -> dict:
    """Train the case in `nproc` processes (of `devices` replicas each; a single process with
    devices > 1 runs TensorFlow's MirroredStrategy); rank 0's final tensors (and "losses")."""
    args = [sys.executable, str(WORKER), backend, case, dtype, str(steps), "1" if sync_bn else "0", str(out),
            "-1", str(devices)]
    envs = worker_envs(backend, nproc) if nproc > 1 else [{**os.environ, **QUIET}]
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for env in envs]
    try:
        errors = [proc.communicate(timeout=PROCESS_TIMEOUT_S)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    failed = {rank: errors[rank][-3000:] for rank, proc in enumerate(procs) if proc.returncode != 0}
    assert not failed, ([proc.returncode for proc in procs], failed)
    return load_file(out)


def worst_rel(ref: dict, got: dict) -> tuple:
    return max((np.linalg.norm(ref[k] - got[k]) / max(np.linalg.norm(ref[k]), 1e-30), k) for k in ref)


# -- the framework-free parts ---------------------------------------------------------------------
def test_shards_of_the_global_inputs_make_up_the_global_inputs():
    spec, config = case_setup("wgan_gp_resnet")
    whole = global_inputs(spec, config, 0)
    layout = augment.Layout(("translation",), 3, 8)
    d_args, g_args = augment.step_args(layout, 0, 13, 0, config.n_dis, BATCH, len(whole.z_g))
    whole = dataclasses.replace(whole, transform_args=d_args, g_transform_args=g_args,
                                consistency_args=augment.consistency_args(0, 15, 0, config.n_dis, BATCH, 8))
    shards = [shard_inputs(whole, World(r, 2)) for r in range(2)]
    for name, axis in (("reals", 1), ("z", 1), ("alphas", 1), ("z_g", 0), ("transform_args", 2),
                       ("g_transform_args", 0), ("consistency_args", 2)):
        parts = [getattr(s, name) for s in shards]
        assert parts[0].shape[axis] == getattr(whole, name).shape[axis] // 2
        np.testing.assert_array_equal(np.concatenate(parts, axis), getattr(whole, name))
    assert shard_inputs(whole, World()) is whole


def test_a_batch_the_world_size_does_not_divide_is_refused():
    check_divides(TrainConfig(batch_size=64), World(0, 4))
    with pytest.raises(GanbenchError, match="batch-size 10 does not split over 4 processes"):
        check_divides(TrainConfig(batch_size=10), World(0, 4))
    with pytest.raises(GanbenchError, match="batch-size-g 65 does not split"):
        check_divides(TrainConfig(batch_size=64, batch_size_g=65), World(1, 2))


def test_world_from_the_launchers_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.current_world("torch") == World() and distributed.current_world("tf") == World()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.current_world("torch") == World(3, 4, 1)
    monkeypatch.delenv("LOCAL_RANK")
    cluster = {"worker": ["a:1", "b:2", "c:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 2}}))
    assert distributed.current_world("tf") == World(2, 3, 0)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(GanbenchError, match="TF_CONFIG must be JSON"):
        distributed.current_world("tf")


# -- replicas against one process ---------------------------------------------------------------
CASES = [(backend, case) for backend in ("torch", "tf") for case in ("dcgan", "sngan_resnet", "wgan_gp_resnet")]
CASES += [("torch", "dcgan_tf_tutorial"), ("tf", "dcgan_tf_tutorial")]  # dropout keyed on the global element


@pytest.mark.parametrize("backend, case", CASES)
def test_two_replicas_equal_one_process_float64(backend, case, tmp_path):
    got = run_workers(backend, case, "float64", 3, True, tmp_path / "state.safetensors")
    ref = flat(run_case(backend, case, "float64", 3, True)["state"])
    assert set(got) - {"losses"} == set(ref)
    rel, name = worst_rel(ref, got)
    assert rel < FP64_STEP_RTOL, (rel, name)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_two_replicas_equal_one_process_float32_first_step(backend, tmp_path):
    got = run_workers(backend, "dcgan", "float32", 1, True, tmp_path / "state.safetensors")
    one = run_case(backend, "dcgan", "float32", 1, True)
    ref_losses = np.array([[d[k] for k in sorted(d)] for d in one["losses"]])
    np.testing.assert_allclose(got["losses"], ref_losses, rtol=FP32_LOSS_RTOL)
    lr = TrainConfig().lr_g
    ref = flat(one["state"])
    for name in (n for n in ref if n.startswith(("G.", "D.")) and "running" not in n):
        assert np.max(np.abs(got[name] - ref[name])) <= FIRST_ADAM_STEP_BOUND * lr, name


@pytest.mark.parametrize("case", ["dcgan", "dcgan_tf_tutorial"])
def test_two_local_replicas_equal_one_process_float64(case, tmp_path):
    """TensorFlow's MirroredStrategy over 2 logical CPU devices in one process (as over 2 GPUs):
    BatchNorm across the replicas, and dropout keyed per replica thread (the ResNets passed too,
    ~1e-14, and stay out of CI for its time)."""
    got = run_workers("tf", case, "float64", 3, True, tmp_path / "state.safetensors", nproc=1, devices=2)
    ref = flat(run_case("tf", case, "float64", 3, True)["state"])
    rel, name = worst_rel(ref, got)
    assert rel < FP64_STEP_RTOL, (rel, name)
    if case == "dcgan":  # and each replica normalised its own rows without --sync-bn: not vacuous
        alone = run_workers("tf", case, "float64", 3, False, tmp_path / "alone.safetensors", nproc=1, devices=2)
        assert worst_rel(ref, alone)[0] > 1e-6


def test_per_replica_batchnorm_is_another_computation(tmp_path):
    """--no-sync-bn: each replica normalises its own rows, so the run differs from one process
    (proof that the synchronised runs above are not equal by accident)."""
    got = run_workers("torch", "dcgan", "float64", 1, False, tmp_path / "state.safetensors")
    ref = flat(run_case("torch", "dcgan", "float64", 1, True)["state"])
    assert worst_rel(ref, got)[0] > 1e-6


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_non_finite_loss_stops_every_replica_with_the_same_line(backend, tmp_path):
    """Only replica 1's batch is NaN; the losses are the replicas' mean, so every replica sees the
    same non-finite value and stops after the same step with the same line (nobody hangs)."""
    args = [sys.executable, str(WORKER), backend, "dcgan", "float32", "3", "1", str(tmp_path / "x"), "1"]
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for env in worker_envs(backend, 2)]
    try:
        errors = [proc.communicate(timeout=PROCESS_TIMEOUT_S)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [3, 3]
    lines = [[line for line in err.splitlines() if line.startswith("ganbench: error:")] for err in errors]
    assert lines[0] == lines[1] and len(lines[0]) == 1 and "non-finite" in lines[0][0] and "step 1" in lines[0][0]


# -- the command line: launch, resume at another world size, a killed worker ---------------------
def train_command(out: Path, steps: int, *extra) -> list:
    return [sys.executable, "-m", "ganbench", "train", "--model", "dcgan", "--batch-size", str(BATCH * 2),
            "--steps", str(steps), "--checkpoint-every", "2", "--keep-checkpoints", "1000", "--sample-every", "1000",
            "--log-every", "1", "--no-progress", "--out", str(out), *extra]


def run_cli(args, timeout=PROCESS_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **QUIET})


def final_tensors(run: Path, step: int) -> dict:
    return load_file(run / "checkpoints" / f"step_{step:07d}.safetensors")


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_cli_nproc_checkpoint_resumes_on_one_process(backend, tmp_path):
    """A 2-process run checkpointed at step 2 resumes on 1 process, whose first step (a forward of
    the same weights on the same numbers) logs the uninterrupted 2-process run's D loss within
    FP32_LOSS_RTOL. Later float32 steps are not compared (see the module docstring); the float64
    tests above prove 1 = 2, and the kill test below resumes on 2 processes bit for bit."""
    full = tmp_path / "full"
    done = run_cli(train_command(full, 4, "--backend", backend, "--nproc", "2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((full / "config.json").read_text())["nproc"] == 2
    records = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # rank 0 alone logs
    part = tmp_path / "part"
    first = run_cli(train_command(part, 2, "--backend", backend, "--nproc", "2"))
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_cli(train_command(part, 4, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((part / "config.json").read_text())["nproc"] == 1
    d_loss = {r["step"]: r["d_loss"] for r in map(json.loads, (part / "log.jsonl").read_text().splitlines())}
    assert sorted(d_loss) == [1, 2, 3, 4]
    assert d_loss[3] == pytest.approx(records[2]["d_loss"], rel=FP32_LOSS_RTOL)
    assert (part / "checkpoints" / "step_0000004.safetensors").is_file()


def children(pid: int) -> list:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def start_run(backend: str, run: Path) -> subprocess.Popen:
    """`train --nproc 2` of a long run, once its first checkpoint is written."""
    launcher = subprocess.Popen(train_command(run, 100000, "--backend", backend, "--nproc", "2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **QUIET})
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while not list((run / "checkpoints").glob("step_*.safetensors")):
        if launcher.poll() is not None or time.monotonic() > deadline:
            stop_all(launcher)
            pytest.fail(f"no checkpoint was written: {launcher.communicate()[1][-3000:]}")
        time.sleep(0.2)
    return launcher


def stop_all(launcher: subprocess.Popen) -> None:
    for pid in children(launcher.pid):
        os.kill(pid, signal.SIGKILL)
    launcher.kill()


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_sigterm_to_the_launcher_stops_every_worker_after_one_checkpoint(backend, tmp_path):
    launcher = start_run(backend, tmp_path / "run")
    try:
        launcher.send_signal(signal.SIGTERM)
        _, err = launcher.communicate(timeout=PROCESS_TIMEOUT_S)
    finally:
        stop_all(launcher)
    assert launcher.returncode == 143
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganbench: stopped by SIG"), err
    stopped_at = int(lines[0].split("after step ")[1].split(";")[0])
    assert (tmp_path / "run" / "checkpoints" / f"step_{stopped_at:07d}.safetensors").is_file()


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_killed_worker_stops_the_run_in_one_line_and_resume_is_exact(backend, tmp_path):
    run = tmp_path / "run"
    launcher = start_run(backend, run)
    try:
        workers = children(launcher.pid)
        assert len(workers) == 2
        os.kill(workers[-1], signal.SIGKILL)
        _, err = launcher.communicate(timeout=PROCESS_TIMEOUT_S)  # a hang fails here
    finally:
        stop_all(launcher)
    assert launcher.returncode == 2
    lines = [line for line in err.splitlines() if line.startswith("ganbench:")]
    assert any(line.startswith("ganbench: error: worker ") and "was killed by SIGKILL" in line for line in lines), err
    assert "Traceback" not in err

    newest = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.safetensors"))
    target = newest + 2
    resumed = run_cli(train_command(run, target, "--resume", "--nproc", "2"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = run_cli(train_command(tmp_path / "straight", target, "--backend", backend, "--nproc", "2"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    ref, got = final_tensors(tmp_path / "straight", target), final_tensors(run, target)
    assert all(np.array_equal(ref[k], got[k]) for k in ref)


def test_cli_devices_trains_tf_replicas_and_torch_refuses(tmp_path):
    run = tmp_path / "tf"
    done = run_cli(train_command(run, 2, "--backend", "tf", "--devices", "2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["devices"] == 2
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all(np.isfinite(r["d_loss"]) for r in records)
    refused = run_cli(train_command(tmp_path / "torch", 2, "--devices", "2"))
    assert refused.returncode == 2 and not (tmp_path / "torch").exists()
    assert refused.stderr.strip() == "ganbench: error: devices: the torch backend runs one device per process (use --nproc)"
