"""Training throughput of ganbench's own loop step, per backend, measured in one process.

Each backend: build the dcgan GAN from the same numpy init, run WARMUP steps (the first one
includes tf.function tracing; it is reported separately), then time STEPS steps on real MNIST
batches. Reports the median step time, img/s (real images consumed per second = batch * n_dis
/ step time), the achieved GFLOP/s (analytic count, ganbench.archs.flops) and its ratio to the
same framework's 2048x2048 float32 matmul rate measured in the same run.
Writes benchmarks/results/train_speed.json.

    python benchmarks/train_speed.py [--steps 30] [--batch-size 64]
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from ganbench import data
from ganbench.archs import build_spec
from ganbench.archs.flops import train_step_flops
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.rng import STREAM_NOISE_D, normal_noise

WARMUP = 3
MODES = {"torch": "eager (no torch.compile), float32, NCHW", "tf": "tf.function graph, jit_compile=False (no XLA), float32, NHWC"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def threads(backend: str) -> int:
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def matmul_gflops(backend: str, size: int = 2048, repeats: int = 10) -> float:
    """Median float32 size x size matmul rate of the framework, result forced to the host."""
    if backend == "torch":
        import torch

        a, b = torch.randn(size, size), torch.randn(size, size)
        run = lambda: (a @ b)[0, 0].item()  # noqa: E731
    else:
        import tensorflow as tf

        a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
        run = lambda: float(tf.matmul(a, b)[0, 0])  # noqa: E731
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def measure(backend: str, spec, stream, steps: int, batch_size: int) -> dict:
    module = get_backend(backend)
    config = TrainConfig(backend=backend, batch_size=batch_size)
    gan = module.GAN(spec, {"nets": init_gan(spec, 0)}, config)
    times = []
    for step in range(WARMUP + steps):
        reals = stream.batch(step)[None]
        z = normal_noise(0, STREAM_NOISE_D, (1, batch_size, spec.z_dim), step)
        start = time.perf_counter()
        gan.train_step(reals, z)  # returns Python floats: the step has finished when it returns
        times.append(time.perf_counter() - start)
    timed = times[WARMUP:]
    median = statistics.median(timed)
    gflops = train_step_flops(spec, batch_size) / median / 1e9
    matmul = matmul_gflops(backend)
    return {
        "backend": backend,
        "framework": module.framework_version(),
        "mode": MODES[backend],
        "threads": threads(backend),
        "first_step_s": times[0],
        "median_step_s": median,
        "min_step_s": min(timed),
        "max_step_s": max(timed),
        "img_per_s": batch_size / median,
        "step_gflop": train_step_flops(spec, batch_size) / 1e9,
        "achieved_gflops": gflops,
        "matmul_gflops": matmul,
        "fraction_of_matmul_rate": gflops / matmul,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_speed.json")
    args = parser.parse_args()
    images, _ = data.load("mnist", "train")
    stream = data.BatchStream(data.pad_to(images, 32), args.batch_size, seed=0)
    spec = build_spec("dcgan", 1)
    rows = [measure(b, spec, stream, args.steps, args.batch_size) for b in ("torch", "tf")]
    result = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
        "model": "dcgan", "dataset": "mnist", "batch_size": args.batch_size, "n_dis": 1,
        "warmup_steps": WARMUP, "timed_steps": args.steps, "rows": rows,
        "ratio_torch_over_tf_img_per_s": rows[0]["img_per_s"] / rows[1]["img_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['machine']['cpu']}, {result['machine']['cores']} cores; dcgan, MNIST, batch {args.batch_size}")
    print("| backend | version | mode | threads | first step (s) | median step (s) [min-max] | img/s "
          "| GFLOP/s | matmul GFLOP/s | fraction |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['framework']} | {r['mode']} | {r['threads']} | {r['first_step_s']:.2f} "
              f"| {r['median_step_s']:.3f} [{r['min_step_s']:.3f}-{r['max_step_s']:.3f}] | {r['img_per_s']:.0f} "
              f"| {r['achieved_gflops']:.1f} | {r['matmul_gflops']:.1f} | {r['fraction_of_matmul_rate']:.0%} |")
    print(f"torch / tf img/s ratio: {result['ratio_torch_over_tf_img_per_s']:.2f}")


if __name__ == "__main__":
    main()
