"""One benchmark configuration, measured in this process: `python -m ganbench.bench.measure JSON`.

The step is ganbench's own training step on real MNIST batches from the same numpy init in both
backends. Warm-up steps are excluded (the first one, which traces or compiles, is reported on its
own); each timed step returns Python floats, so the work has finished (and the device is
synchronised) when the timer stops. Peak memory is the process's maximum RSS, so every
configuration gets a fresh process.
"""

import json
import os
import platform
import resource
import statistics
import sys
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


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "os": platform.platform()}


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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(model: str, backend: str, mode: str, batch_size: int, steps: int, warmup: int, data_dir=None) -> dict:
    module = get_backend(backend)
    images, _ = data.load("mnist", "train", data_dir)
    stream = data.BatchStream(data.pad_to(images, 32), batch_size, seed=0)
    spec = build_spec(model, 1)
    config = TrainConfig(model=model, backend=backend, batch_size=batch_size, mode=mode)
    rss_before = peak_rss_mb()
    gan = module.GAN(spec, {"nets": init_gan(spec, 0)}, config, mode=mode)
    times = []
    for step in range(warmup + steps):
        reals = stream.batch(step)[None]
        z = normal_noise(0, STREAM_NOISE_D, (1, batch_size, spec.z_dim), step)
        start = time.perf_counter()
        gan.train_step(reals, z)
        times.append(time.perf_counter() - start)
    timed = times[warmup:]
    median = statistics.median(timed)
    quartiles = statistics.quantiles(timed, n=4) if len(timed) > 1 else [median, median, median]
    flops = train_step_flops(spec, batch_size)
    matmul = matmul_gflops(backend)
    return {
        "model": model, "backend": backend, "mode": gan.mode, "mode_detail": module.MODES[gan.mode],
        "batch_size": batch_size, "framework": module.framework_version(), "threads": threads(backend),
        "warmup_steps": warmup, "timed_steps": steps,
        "first_step_s": times[0], "median_step_s": median, "iqr_step_s": quartiles[2] - quartiles[0],
        "min_step_s": min(timed), "max_step_s": max(timed),
        "img_per_s": batch_size / median,
        "step_gflop": flops / 1e9, "achieved_gflops": flops / median / 1e9,
        "matmul_gflops": matmul, "fraction_of_matmul_rate": flops / median / 1e9 / matmul,
        "rss_after_import_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(measure(**args)))
