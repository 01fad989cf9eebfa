"""`ganbench train --nproc N`: start N training processes on this machine and watch them.

torch: torchrun's own launcher API (torch.distributed.launcher.api.elastic_launch), with a c10d
rendezvous on a free 127.0.0.1 port and no restarts. tf: one process per worker, each with a
TF_CONFIG naming every worker's 127.0.0.1 port (tf.distribute.MultiWorkerMirroredStrategy).
Each worker runs the same `ganbench train` command line; the environment says which rank it is.
Ctrl-C and SIGTERM reach every worker, which stop together after a checkpoint; when a worker
dies the others are stopped, and the launcher says which one, in one line.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from ganbench.errors import GanbenchError

GRACE_S = 30  # what a stopped worker gets to finish its step and checkpoint before SIGKILL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_environment(nproc: int) -> dict:
    """The environment of every worker: the cores shared out (one OpenMP / TensorFlow thread pool
    per worker), unless the user set the thread counts."""
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env.setdefault(name, threads)
    return env


def worker_failure(rank: int, exitcode: int) -> str:
    how = f"was killed by {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exited with code {exitcode}"
    return f"worker {rank} {how}; the others were stopped (continue with --resume)"


def launch(argv: list, nproc: int, backend: str) -> int:
    """Run `ganbench <argv>` in `nproc` processes; the exit code of the run."""
    if backend == "torch":
        return launch_torch(argv, nproc)
    return launch_tf(argv, nproc)


def launch_torch(argv: list, nproc: int) -> int:
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # ganbench reports failures and signals itself
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"ganbench-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{free_port()}", max_restarts=0,
                          monitor_interval=0.2, shutdown_timeout=GRACE_S)
    os.environ.update(worker_environment(nproc))
    try:
        elastic_launch(config, sys.executable)("-m", "ganbench", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode > 0:  # the worker said why (one line on stderr) and chose the exit code
            return failure.exitcode
        raise GanbenchError(worker_failure(rank, failure.exitcode)) from None
    except SignalException as exc:
        return 128 + exc.sigval
    return 0


def worker_environments(backend: str, nproc: int) -> list:
    """Each local worker's environment, as its framework's launcher describes a world on this
    machine: torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for torch; for
    tf a TF_CONFIG naming every worker's 127.0.0.1 port (and LOCAL_RANK, which picks its GPU)."""
    env = worker_environment(nproc)
    if backend == "torch":
        port = str(free_port())
        return [{**env, "RANK": str(rank), "WORLD_SIZE": str(nproc), "LOCAL_RANK": str(rank),
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port} for rank in range(nproc)]
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(nproc)]}
    return [{**env, "LOCAL_RANK": str(index),
             "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            for index in range(nproc)]


def launch_tf(argv: list, nproc: int) -> int:
    return supervise([subprocess.Popen([sys.executable, "-m", "ganbench", *argv], env=env)
                      for env in worker_environments("tf", nproc)])


def supervise(workers: list) -> int:
    """Wait for the workers; forward SIGINT/SIGTERM to them; when one fails, stop the others.
    The exit code: 0, a worker's own code, or that of the signal received."""
    received = []

    def forward(signum, frame):
        received.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    saved = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while None in (codes := [worker.poll() for worker in workers]):
            failed = [(rank, code) for rank, code in enumerate(codes) if code not in (None, 0)]
            if received:  # stopping on request: each finishes its step (rank 0 its checkpoint) unhurried
                stop(workers, signalled=True)
            elif failed:  # the first to fail is the cause; the others cannot go on without it
                stop(workers)
                break
            time.sleep(0.1)
        else:
            failed = [(rank, code) for rank, code in enumerate(codes) if code]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if received:
        return 128 + received[0]
    if not failed:
        return 0
    rank, code = failed[0]
    if code > 0:  # the worker said why (one line on stderr) and chose the exit code
        return code
    raise GanbenchError(worker_failure(rank, code))


def stop(workers: list, signalled: bool = False) -> None:
    """SIGTERM to the workers still running (unless `signalled` already: a second SIGTERM would end
    them at once); SIGKILL to those alive after GRACE_S."""
    for worker in workers:
        if worker.poll() is None and not signalled:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
