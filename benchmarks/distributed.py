"""Data-parallel step time: 1 process against 2 on this machine, both backends, with the
communication of a step timed apart. Prints a table; writes JSON.

    python benchmarks/distributed.py [--steps 10] [--warmup 3] [--out benchmarks/results/distributed.json]

Each configuration runs in fresh processes started as `train --nproc` starts them
(ganbench.launch.worker_environments); every process trains on synthetic images of the preset's
shape (the data reader is not what is timed) with the preset's recipe at the stated width, its
global batch split over the processes, synchronised BatchNorm on. Rows:
- 1 process, T threads (T = the cores): the baseline a user has without --nproc;
- 1 process, 1 thread, and 2 processes with 1 thread each: the same cores, shared out;
- 2 processes again with --no-sync-bn: what synchronising BatchNorm costs.
Per row: median step time after the warm-up, img/s (real images per second, n_dis included, as
the training log), and the step's gradient all-reduces timed alone in the same process group
(n_dis all-reduces of D's gradients and one of G's, float32; BatchNorm's small all-reduces are
not in it). The prediction for 8 GPUs: a ring all-reduce moves 2 (N - 1) / N times the gradient
bytes per GPU; at the stated bus bandwidths.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = [("dcgan", 1.0, 1), ("sngan_cifar10", 0.25, 3)]  # (preset, width, image channels)
BANDWIDTHS_GB_S = {"NVLink 4 (H100/H200 SXM, ~450 GB/s bus bandwidth)": 450.0, "PCIe 4 x16 (~25 GB/s)": 25.0}


def worker(args) -> None:
    """One process: time the steps and the gradient all-reduces; rank 0 prints a JSON row."""
    from ganbench.backends import get_backend
    from ganbench.distributed import current_world, shard_inputs
    from ganbench.init import init_gan
    from ganbench.model import spec_for_config
    from ganbench.config import TrainConfig
    from ganbench.presets import apply_preset
    from ganbench.rng import normal_noise
    from ganbench.step_inputs import StepInputs

    world = current_world(args.backend)
    config = apply_preset(TrainConfig(), args.preset).replace(backend=args.backend, width=args.width, image_size=32,
                                                              channels=args.channels, sync_bn=not args.no_sync_bn)
    spec = spec_for_config(config)
    backend = get_backend(args.backend)
    gan = backend.GAN(spec, {"nets": init_gan(spec, 0)}, config, world=world)
    c, h, w = spec.image_shape
    rng = np.random.default_rng(0)
    times = []
    for step in range(args.warmup + args.steps):
        inputs = StepInputs(
            reals=rng.uniform(-1, 1, (config.n_dis, config.batch_size, h, w, c)).astype(np.float32),
            z=normal_noise(0, 2, (config.n_dis, config.batch_size, spec.z_dim), step),
            z_g=normal_noise(0, 3, (config.batch_size_g, spec.z_dim), step) if config.batch_size_g else None)
        local = shard_inputs(inputs, world)
        start = time.perf_counter()
        gan.train_step(local)  # returns the losses as Python floats: the step has finished
        times.append(time.perf_counter() - start)
    sizes = {key: sum(int(np.prod(a.shape)) for a in gan.export_state()["opt"][key]["exp_avg"].values())
             for key in ("G", "D")}
    comm = allreduce_seconds(gan, args.backend, [sizes["D"]] * config.n_dis + [sizes["G"]], args.steps) \
        if world.distributed else 0.0
    gan.collective.close(together=True)
    median = statistics.median(times[args.warmup:])
    if world.is_main:
        print(json.dumps({
            "preset": args.preset, "width": args.width, "backend": args.backend, "mode": gan.mode,
            "framework": backend.framework_version(), "nproc": world.size, "threads_per_process": args.threads,
            "sync_bn": config.sync_bn,
            "global_batch": config.batch_size, "n_dis": config.n_dis, "median_step_s": median,
            "img_per_s": config.batch_size * config.n_dis / median, "allreduce_s_per_step": comm,
            "gradient_floats": sizes, "gradient_mb_per_step": 4 * (config.n_dis * sizes["D"] + sizes["G"]) / 1e6}))


def allreduce_seconds(gan, backend: str, sizes: list, repeats: int) -> float:
    """The median time of one step's gradient all-reduces (float32 buffers of `sizes`)."""
    if backend == "torch":
        import torch
        import torch.distributed as dist

        buffers = [torch.zeros(n) for n in sizes]
        run = lambda: [dist.all_reduce(b) for b in buffers]  # noqa: E731
    else:
        import tensorflow as tf

        from ganbench.backends.tf.distributed import replica_sum

        buffers = [tf.zeros([n]) for n in sizes]

        def sum_each():
            return [replica_sum(b) for b in buffers]

        @tf.function
        def reduce_all():
            return gan.strategy.run(sum_each)

        run = lambda: [t.numpy() for t in reduce_all()]  # noqa: E731
    run()  # warm-up (and tracing)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(preset, width, channels, backend, nproc, threads, steps, warmup, sync_bn=True) -> dict:
    from ganbench.launch import worker_environments

    command = [sys.executable, __file__, "--worker", "--preset", preset, "--width", str(width), "--channels",
               str(channels), "--backend", backend, "--steps", str(steps), "--warmup", str(warmup),
               "--threads", str(threads), *([] if sync_bn else ["--no-sync-bn"])]
    envs = [{**env, "OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads),
             "TF_NUM_INTEROP_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
            for env in worker_environments(backend, nproc)]
    if nproc == 1:
        envs = [{k: v for k, v in envs[0].items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TF_CONFIG")}]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for env in envs]
    outs = [proc.communicate(timeout=1800)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a worker failed: {preset} {backend} nproc {nproc}")
    return json.loads(outs[0].strip().splitlines()[-1])


def machine() -> dict:
    from ganbench.bench.measure import cpuinfo

    return {"cpu": cpuinfo("model name") or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--preset")
    parser.add_argument("--width", type=float)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--backend")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-sync-bn", action="store_true")
    parser.add_argument("--backends", default="torch,tf")
    parser.add_argument("--presets", default=",".join(preset for preset, _, _ in CASES),
                        help="which of the cases' presets to run; default all")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distributed.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    cores = os.cpu_count() or 1
    rows = []
    for preset, width, channels in [case for case in CASES if case[0] in args.presets.split(",")]:
        for backend in args.backends.split(","):
            for nproc, threads, sync_bn in ((1, cores, True), (1, 1, True), (2, 1, True), (2, 1, False)):
                row = measure(preset, width, channels, backend, nproc, threads, args.steps, args.warmup, sync_bn)
                rows.append(row)
                sync = "" if sync_bn else ", no sync-bn"
                print(f"{preset:14} w{width:<5} {backend:5} {row['mode']:6} nproc {nproc} x {threads} thread(s){sync}: "
                      f"{row['median_step_s']:.3f} s/step, {row['img_per_s']:7.1f} img/s, "
                      f"all-reduce {row['allreduce_s_per_step'] * 1e3:6.1f} ms/step", flush=True)
    predictions = {}
    for row in rows:
        if row["nproc"] == 1 and row["threads_per_process"] == 1 and row["backend"] == "torch":
            megabytes = row["gradient_mb_per_step"]
            predictions[row["preset"]] = {
                "gradient_mb_per_step": megabytes,
                "ring_allreduce_ms_per_step_8_gpus": {name: 2 * 7 / 8 * megabytes / 1e3 / bw * 1e3
                                                      for name, bw in BANDWIDTHS_GB_S.items()}}
    for preset, p in predictions.items():
        print(f"{preset}: {p['gradient_mb_per_step']:.1f} MB of gradients per step; 8-GPU ring all-reduce "
              + ", ".join(f"{ms:.2f} ms over {name}" for name, ms in p["ring_allreduce_ms_per_step_8_gpus"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "rows": rows, "predictions": predictions}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
