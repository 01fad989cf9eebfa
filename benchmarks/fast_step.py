"""Fast-step experiments for the torch backend's CPU step: each variant against the default, in
one process, on each preset's real inputs. Prints a table and writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/fast_step.py --out benchmarks/results/fast_step.json

Variants (the default is ganbench's step as shipped, which keeps G, D and the images in
torch.channels_last memory format on the CPU since an earlier run of this script,
results/fast_step_nchw_default.json, measured it 0-13% faster than the contiguous layout):
- contiguous: the plain NCHW layout instead;
- adam foreach / fused: torch.optim.Adam(foreach=True) or (fused=True) instead of the per-tensor loop
  that PyTorch picks for CPU tensors;
- concat D: one D forward on torch.cat([real, fake]) in the D update, only where D has no BatchNorm
  (batch statistics would mix real and fake): dcgan_tf_tutorial. Timing only: its dropout masks
  would be keyed once for both halves, which the tf backend would have to copy;
- compiled: torch.compile of G and D (the bench's 'compiled' mode).
TensorFlow's variants (graph, XLA) are the bench's own modes.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ganbench.archs.spec import BatchNorm, leaf_layers
from ganbench.bench.measure import bench_config, bench_gan, machine, matmul_gflops
from ganbench.archs.flops import train_step_flops
from ganbench.training import loop
from ganbench.training.inputs import draw_step_inputs

VARIANTS = ("default", "contiguous", "adam foreach", "adam fused", "concat D", "compiled")


def concat_d_pair(gan):
    return lambda real, fake: gan._call_D(torch.cat([real, fake])).chunk(2)


def make_gan(spec, config, variant):
    torch._dynamo.reset()  # a fresh compile cache: dynamo stops compiling after 8 recompiles per function
    gan = bench_gan(spec, config.replace(mode="compiled" if variant == "compiled" else "eager"))
    if variant == "contiguous":
        gan.memory_format = torch.contiguous_format
        for net in gan.nets.values():
            net.to(memory_format=torch.contiguous_format)
    if variant.startswith("adam "):
        option = variant.split()[1]
        gan.opts = {key: torch.optim.Adam(net.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2),
                                          eps=config.eps, **{option: True}) for key, net in gan.nets.items()}
    if variant == "concat D":
        gan._d_pair = concat_d_pair(gan)
    return gan


def time_variant(preset, variant, steps, warmup, data_dir):
    config, spec, stream = loop.prepare_data(bench_config(preset, "torch", "eager"), data_dir)
    if variant == "concat D" and any(isinstance(layer, BatchNorm) for layer in leaf_layers(spec.discriminator.layers)):
        return None
    gan = make_gan(spec, config, variant)
    times = []
    for step in range(warmup + steps):
        inputs = draw_step_inputs(config, stream, spec, step)
        start = time.perf_counter()
        gan.train_step(inputs)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[warmup:])
    return {"preset": preset, "variant": variant, "median_step_s": median,
            "gflops": train_step_flops(spec, config) / median / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan,dcgan_pytorch_example,dcgan_tf_tutorial")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path("fast_step.json"))
    args = parser.parse_args()
    matmul = matmul_gflops("torch")
    rows = [r for preset in args.presets.split(",") for variant in VARIANTS
            if (r := time_variant(preset, variant, args.steps, args.warmup, args.data_dir))]
    base = {r["preset"]: r["median_step_s"] for r in rows if r["variant"] == "default"}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, matmul {matmul:.0f} GFLOP/s")
    print(f"{'preset':24} {'variant':14} {'step (s)':>9} {'vs default':>11} {'of matmul':>10}")
    for r in rows:
        r["speedup"] = base[r["preset"]] / r["median_step_s"]
        r["fraction_of_matmul_rate"] = r["gflops"] / matmul
        print(f"{r['preset']:24} {r['variant']:14} {r['median_step_s']:9.3f} {r['speedup']:10.2f}x "
              f"{r['fraction_of_matmul_rate']:10.0%}")
    args.out.write_text(json.dumps({"machine": machine(), "torch": torch.__version__, "matmul_gflops": matmul,
                                    "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
