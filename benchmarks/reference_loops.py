"""Plain framework loops in the style of the two official DCGAN examples, timed on this machine,
so that ganbench's step can be compared with what a user of each framework writes by hand.

- torch: the pytorch/examples dcgan structure (nn.Sequential G and D, D ending in Sigmoid,
  nn.BCELoss, D backward on real then on fake.detach(), G backward on D(fake), two Adams);
- tf: the TensorFlow DCGAN tutorial structure (keras.Sequential models with Keras' defaults,
  two GradientTapes, Keras Adam, the step as a @tf.function without XLA, as the tutorial runs it).

Each loop runs in its own process on random images of the example's size (the data pipeline is
not timed), its steps alternating with ganbench's step for the matching preset (the bench's
default mode: PyTorch eager, TensorFlow graph; inputs drawn beforehand). FLOPs per step come from
ganbench's counter for that preset, so the rates are comparable with `ganbench bench`; "at
matmul rate" is the speed-up over the plain loop of a step that ran those FLOPs at the
framework's 2048x2048 float32 matmul rate: a yardstick for any step of the same FLOPs (not a
hard limit: a large convolution can run a little faster than that matmul). Prints a table and
writes JSON.

--precision bf16 runs each loop in bf16 the way its framework's users do (PyTorch: forwards and
losses under torch.autocast; Keras: the models built under the mixed_bfloat16 policy, float32
logits), ganbench's step with --precision bf16, and takes the matmul rate in bf16.

    python benchmarks/reference_loops.py --out benchmarks/results/reference_loops.json
"""

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
from pathlib import Path

from ganbench.archs import build_spec
from ganbench.archs.flops import train_step_flops
from ganbench.bench.measure import bench_config, machine, matmul_gflops, prepared_steps, timed

PRESETS = {"torch": "dcgan_pytorch_example", "tf": "dcgan_tf_tutorial"}


def torch_loop(batch: int, precision: str = "fp32"):
    import torch
    from torch import nn

    def up(cin, cout, stride, pad, last=False):
        layers = [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False)]
        return layers + ([nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(True)])

    def down(cin, cout, bn=True):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else []) + [
            nn.LeakyReLU(0.2, inplace=True)]

    g = nn.Sequential(*up(100, 512, 1, 0), *up(512, 256, 2, 1), *up(256, 128, 2, 1), *up(128, 64, 2, 1),
                      *up(64, 1, 2, 1, last=True))
    d = nn.Sequential(*down(1, 64, bn=False), *down(64, 128), *down(128, 256), *down(256, 512),
                      nn.Conv2d(512, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    for m in [*g.modules(), *d.modules()]:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    real = torch.rand(batch, 1, 64, 64) * 2 - 1
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    def amp():  # forwards and losses under autocast, backwards and Adam outside, as torch's AMP recipe
        return torch.autocast("cpu", torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def step():
        d.zero_grad()
        with amp():
            loss = bce(d(real).view(-1), ones)
        loss.backward()
        with amp():
            fake = g(torch.randn(batch, 100, 1, 1))
            loss = bce(d(fake.detach()).view(-1), zeros)
        loss.backward()
        opt_d.step()
        g.zero_grad()
        with amp():
            loss = bce(d(fake).view(-1), ones)
        loss.backward()
        opt_g.step()
        return loss.item()

    return step


def tf_loop(batch: int, precision: str = "fp32"):
    import ganbench.backends.tf  # noqa: F401  (imports TensorFlow in the order that avoids a crash)
    import keras
    import tensorflow as tf

    # Keras' mixed precision: layers built under the policy keep it (ganbench's own ops ignore it)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")

    layers = keras.layers
    g = keras.Sequential([
        keras.Input((100,)), layers.Dense(7 * 7 * 256, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.LeakyReLU(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
    ])
    d = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(64, 5, strides=2, padding="same"), layers.LeakyReLU(),
        layers.Dropout(0.3), layers.Conv2D(128, 5, strides=2, padding="same"), layers.LeakyReLU(), layers.Dropout(0.3),
        layers.Flatten(), layers.Dense(1, dtype="float32"),  # the logits in float32, as Keras' guide advises
    ])
    keras.mixed_precision.set_global_policy("float32")
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    opt_g, opt_d = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    real = tf.random.uniform((batch, 28, 28, 1), -1, 1)

    @tf.function
    def train(images):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = g(tf.random.normal([batch, 100]), training=True)
            real_out, fake_out = d(images, training=True), d(fake, training=True)
            g_loss = bce(tf.ones_like(fake_out), fake_out)
            d_loss = bce(tf.ones_like(real_out), real_out) + bce(tf.zeros_like(fake_out), fake_out)
        opt_g.apply_gradients(zip(g_tape.gradient(g_loss, g.trainable_variables), g.trainable_variables))
        opt_d.apply_gradients(zip(d_tape.gradient(d_loss, d.trainable_variables), d.trainable_variables))
        return g_loss

    return lambda: float(train(real))


def ganbench_steps(config, data_dir, count: int):
    """ganbench's training step for the preset as `ganbench bench` builds it (the preset's data,
    init and inputs, drawn beforehand as the plain loops' are): its mode and a function of the
    step index."""
    gan, inputs = prepared_steps(config, data_dir, count)
    return gan.mode, lambda step: gan.train_step(inputs[step])


def measure(backend: str, steps: int, warmup: int, data_dir=None, precision: str = "fp32") -> dict:
    """The plain loop and ganbench's step (the bench's default mode) in one process, their steps
    alternating (which goes first alternates too), so that both see the same machine: on a shared
    VM the speed drifts by 10-30% within minutes, more than the difference measured."""
    config = bench_config(PRESETS[backend], backend, "default", precision=precision)
    plain = (torch_loop if backend == "torch" else tf_loop)(config.batch_size, precision)
    mode, ours = ganbench_steps(config, data_dir, warmup + steps)
    times = {"plain": [], "ganbench": []}
    for step in range(warmup + steps):
        runs = {"plain": plain, "ganbench": lambda: ours(step)}
        for name in sorted(runs, reverse=step % 2 == 1):
            times[name].append(timed(runs[name]))
    plain_s, ours_s = (times[name][warmup:] for name in ("plain", "ganbench"))
    plain_median, ours_median = statistics.median(plain_s), statistics.median(ours_s)
    gflop = train_step_flops(build_spec(config.model, 1), config) / 1e9
    matmul = matmul_gflops(backend, precision)
    return {"backend": backend, "example": PRESETS[backend], "precision": precision,
            "batch_size": config.batch_size, "ganbench_mode": mode,
            "steps": steps, "median_step_s": plain_median, "img_per_s": config.batch_size / plain_median,
            "achieved_gflops": gflop / plain_median, "matmul_gflops": matmul,
            "fraction_of_matmul_rate": gflop / plain_median / matmul,
            "ganbench_median_step_s": ours_median, "ganbench_fraction_of_matmul_rate": gflop / ours_median / matmul,
            "ganbench_speedup": statistics.median(p / o for p, o in zip(plain_s, ours_s)),
            "speedup_at_matmul_rate": plain_median / (gflop / matmul)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: torch.autocast / Keras' mixed_bfloat16 policy, and ganbench's --precision bf16")
    parser.add_argument("--out", type=Path, default=Path("reference_loops.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one backend in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.warmup, args.data_dir, args.precision)))
        return
    rows = []
    for backend in PRESETS:
        cmd = [sys.executable, __file__, "--one", backend, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--precision", args.precision]
        cmd += ["--data-dir", args.data_dir] if args.data_dir else []
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
    print(f"{'loop':44} {'batch':>5} {'step (s)':>9} {'of matmul':>10} {'ganbench (s)':>13} {'of matmul':>10} "
          f"{'speed-up':>9} {'at matmul rate':>15}")
    for r in rows:
        loop = f"{r['backend']} {args.precision} plain loop, {r['example']}"
        print(f"{loop:44} {r['batch_size']:5d} {r['median_step_s']:9.3f} "
              f"{r['fraction_of_matmul_rate']:10.0%} {r['ganbench_median_step_s']:13.3f} "
              f"{r['ganbench_fraction_of_matmul_rate']:10.0%} {r['ganbench_speedup']:8.2f}x {r['speedup_at_matmul_rate']:14.2f}x")
    args.out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
