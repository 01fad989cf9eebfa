"""What TensorFlow's bf16 step gains from weight gradients taken as matmuls (one process, steps alternating).

ganbench's TensorFlow convolutions in a low precision whose smaller map is at most 8x8, with a
kernel at most twice the stride, take their weight gradient as matmuls over the larger map's
blocks (`nets.weight_gradient_by_matmul`) instead of oneDNN's kernel. This script times each
preset's bf16 step both ways in one process, the steps alternating, and prints the median step
and the median of the per-step ratios. Writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/tf_weight_gradients.py --out tf_weight_gradients.json
"""

import argparse
import json
import statistics
from pathlib import Path

import ganbench.backends.tf  # noqa: F401  (TensorFlow before the data code's imports)
from ganbench.backends.tf import nets
from ganbench.bench.measure import bench_config, machine, prepared_steps, timed

BY_MATMUL = nets.weight_gradient_by_matmul_pays
RULES = {"oneDNN's kernel": lambda layer, small_side: False, "by matmul (ganbench)": BY_MATMUL}


def measure(preset: str, steps: int, warmup: int, data_dir=None) -> dict:
    runs = {name: prepared_steps(bench_config(preset, "tf", "default", precision="bf16"), data_dir, warmup + steps)
            for name in RULES}
    times = {name: [] for name in RULES}
    for step in range(warmup + steps):
        for name in sorted(RULES, reverse=step % 2 == 1):  # which goes first alternates
            gan, inputs = runs[name]
            nets.weight_gradient_by_matmul_pays = RULES[name]  # read while the step is traced
            try:
                times[name].append(timed(lambda: gan.train_step(inputs[step])))
            finally:
                nets.weight_gradient_by_matmul_pays = BY_MATMUL
    kernel = times["oneDNN's kernel"][warmup:]
    return {name: {"median_step_s": statistics.median(values[warmup:]),
                   "speedup": statistics.median(a / b for a, b in zip(kernel, values[warmup:]))}
            for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan,dcgan_pytorch_example,dcgan_tf_tutorial")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("tf_weight_gradients.json"))
    args = parser.parse_args()
    result = {"steps": args.steps, "warmup": args.warmup, "machine": machine(), "presets": {}}
    print(f"TensorFlow bf16 graph step, {args.steps} alternating steps ({result['machine']['cpu']})")
    print(f"{'preset':22} {'weight gradients':22} {'step (s)':>9} {'speed-up':>9}")
    for preset in args.presets.split(","):
        rows = result["presets"][preset] = measure(preset, args.steps, args.warmup, args.data_dir)
        for name, row in rows.items():
            print(f"{preset:22} {name:22} {row['median_step_s']:9.3f} {row['speedup']:8.2f}x", flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
