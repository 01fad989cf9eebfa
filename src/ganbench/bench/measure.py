"""One benchmark configuration, measured in this process: `python -m ganbench.bench.measure JSON`.

The step is ganbench's own training step of a preset, on the preset's dataset, from the same
numpy init, data order and noise in both backends. Warm-up steps are excluded (the first one,
which traces or compiles, is reported on its own); each timed step returns Python floats, so the
work has finished (and the device is synchronised) when the timer stops. Drawing the step's
inputs (batch and noise, numpy) is timed apart, as the "data" part of the breakdown. Peak memory is
the process's maximum RSS, so every configuration gets a fresh process.
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

from ganbench.archs.flops import train_step_flops
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.precision import compute_dtype
from ganbench.presets import apply_preset
from ganbench.training import loop
from ganbench.training.inputs import draw_step_inputs


def cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo ("model name", "flags"); None where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return cpuinfo("model name") or platform.processor() or "unknown"


LOW_PRECISION_FLAGS = ("avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16")  # hardware bf16 / fp16 on x86


def cpu_flags() -> list:
    """The CPU's low-precision flags from /proc/cpuinfo (empty: bf16 and fp16 are emulated)."""
    present = set((cpuinfo("flags") or "").split())
    return [flag for flag in LOW_PRECISION_FLAGS if flag in present]


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "os": platform.platform(), "low_precision_flags": cpu_flags()}


def threads(backend: str) -> int:
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def matmul_gflops(backend: str, precision: str = "fp32", repeats: int = 10) -> float:
    """Median square matmul rate of the framework in `precision` on the device its GANs train on,
    the result forced to the host: 2048x2048 on a CPU, 8192x8192 on a GPU (which a 2048 product
    leaves mostly idle)."""
    dtype = compute_dtype(precision) or "float32"
    if backend == "torch":
        import torch

        from ganbench.backends.torch.step import default_device

        device = default_device()
        size = 2048 if device == "cpu" else 8192
        a, b = (torch.randn(size, size, device=device).to(getattr(torch, dtype)) for _ in range(2))
        run = lambda: (a @ b)[0, 0].item()  # noqa: E731
    else:
        import tensorflow as tf

        size = 8192 if tf.config.list_logical_devices("GPU") else 2048  # TensorFlow's default device
        a, b = (tf.cast(tf.random.normal((size, size)), dtype) for _ in range(2))
        run = lambda: float(tf.matmul(a, b)[0, 0])  # noqa: E731
    return 2 * size**3 / median_seconds(run, repeats, warmup=1) / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_config(preset: str, backend: str, mode: str, batch_size: int = 0, width: float = 0.0,
                 precision: str = "fp32") -> TrainConfig:
    """The preset's training configuration, run in `backend`, `mode` and `precision`; batch_size
    and width 0 keep the preset's."""
    config = apply_preset(TrainConfig(), preset).replace(backend=backend, mode=mode, precision=precision)
    return config.replace(batch_size=batch_size or config.batch_size, width=width or config.width).validate()


def quartile_spread(times: list) -> tuple:
    median = statistics.median(times)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [median, median, median]
    return median, quartiles[2] - quartiles[0]


def phase_breakdown(gan, inputs, repeats: int) -> dict:
    """Median seconds of each part of the training step (the backend's phase_fns), each run alone
    after one warm-up call of every part in the step's order (the D updates need the fakes)."""
    parts = gan.phase_fns(inputs)
    for fn in parts.values():
        fn()
    return {name: median_seconds(fn, repeats) for name, fn in parts.items()}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn, repeats: int, warmup: int = 0) -> float:
    """The median time of `repeats` calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(repeats))


def alternating_steps(configs: dict, steps: int, warmup: int, variant, data_dir=None) -> dict:
    """The benchmark scripts' A/B comparisons: {name: {"median_step_s", "speedup"}} of the configs'
    steps ({name: TrainConfig}), timed in one process with the steps alternating (which one goes
    first alternating too) so that all see the same machine, warm-up steps dropped. variant(name),
    a context manager, is entered around each of that run's steps: what the run patches in while
    its step is traced. speedup: the median of the per-step ratios to the first config's step."""
    runs = {name: prepared_steps(config, data_dir, warmup + steps) for name, config in configs.items()}
    times = {name: [] for name in runs}
    for step in range(warmup + steps):
        for name in sorted(runs, reverse=step % 2 == 1):
            gan, inputs = runs[name]
            with variant(name):
                times[name].append(timed(lambda: gan.train_step(inputs[step])))
    first = times[next(iter(configs))][warmup:]
    return {name: {"median_step_s": statistics.median(values[warmup:]),
                   "speedup": statistics.median(a / b for a, b in zip(first, values[warmup:]))}
            for name, values in times.items()}


def bench_gan(spec, config):
    """A fresh GAN as the bench times it: the config's backend and mode, initial weights keyed on its
    seed."""
    return get_backend(config.backend).GAN(spec, {"nets": init_gan(spec, config.seed)}, config, mode=config.mode)


def prepared_steps(config, data_dir, count: int) -> tuple:
    """(gan, inputs): the GAN the bench times for `config` and the inputs of its first `count` steps,
    drawn beforehand (for the benchmark scripts that time the step alone)."""
    config, spec, stream = loop.prepare_data(config, data_dir)
    return bench_gan(spec, config), [draw_step_inputs(config, stream, spec, step) for step in range(count)]


def measure(preset: str, backend: str, mode: str, batch_size: int, steps: int, warmup: int, data_dir=None,
            phase_repeats: int = 5, width: float = 0.0, precision: str = "fp32") -> dict:
    module = get_backend(backend)
    config, spec, stream = loop.prepare_data(bench_config(preset, backend, mode, batch_size, width, precision),
                                             data_dir)
    rss_before = peak_rss_mb()
    gan = bench_gan(spec, config)
    # the yardstick before the steps and after: a matmul timing that a passing disturbance slowed
    # would flatter the step's fraction of it, so the faster of the two counts
    matmul_rates = [matmul_gflops(backend, precision)]
    step_times, data_times = [], []
    for step in range(warmup + steps):
        start = time.perf_counter()
        inputs = draw_step_inputs(config, stream, spec, step)
        data_times.append(time.perf_counter() - start)
        step_times.append(timed(lambda: gan.train_step(inputs)))
    median, iqr = quartile_spread(step_times[warmup:])
    phases = {"data": statistics.median(data_times[warmup:]), **phase_breakdown(gan, inputs, phase_repeats)}
    flops = train_step_flops(spec, config)
    matmul_rates.append(matmul_gflops(backend, precision))
    matmul = max(matmul_rates)
    timed_steps = step_times[warmup:]
    return {
        "preset": preset, "model": config.model, "width": config.width, "backend": backend, "mode": gan.mode,
        "precision": precision,
        "mode_detail": module.MODES[gan.mode], "options": module.OPTIONS, "batch_size": config.batch_size,
        "step": f"{config.update}, n_dis {config.n_dis}, loss {config.loss}, G batch {config.batch_size_g or 'reused'}",
        "image_size": config.image_size, "framework": module.framework_version(), "threads": threads(backend),
        "warmup_steps": warmup, "timed_steps": steps,
        "first_step_s": step_times[0], "median_step_s": median, "iqr_step_s": iqr,
        "min_step_s": min(timed_steps), "max_step_s": max(timed_steps),
        # real images consumed per second, n_dis included: what the training log's img_per_s means
        "img_per_s": config.batch_size * config.n_dis / median, "phases_s": phases,
        "step_gflop": flops / 1e9, "achieved_gflops": flops / median / 1e9,
        "matmul_gflops": matmul, "matmul_gflops_before_after": matmul_rates,
        "fraction_of_matmul_rate": flops / median / 1e9 / matmul,
        "rss_after_import_mb": rss_before, "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(measure(**args)))
