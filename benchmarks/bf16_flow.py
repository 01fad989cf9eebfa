"""What ganbench's bf16 rule gains over widening each result (PyTorch, the earlier rule by patching).

ganbench lets each low-precision result flow on into BatchNorm, the activations and the next layer,
as torch.autocast does (src/ganbench/precision.py). Its earlier rule widened each result to
float32 where it was made. This script times three steps of one preset in one process, their steps
alternating: fp32, bf16 as ganbench runs it, and bf16 with the widening patched back in
(`LowPrecision.compute` returning its result in the input's dtype). Prints a table and writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/bf16_flow.py --preset dcgan_pytorch_example
"""

import argparse
import json
from pathlib import Path
from unittest import mock

from ganbench.backends.torch import nets
from ganbench.bench.measure import alternating_steps, bench_config, machine

FLOWING_COMPUTE = nets.LowPrecision.compute


def widening_compute(layer, op, x, weight, bias):
    """The earlier rule: LowPrecision.compute's result back in the input's dtype at once."""
    return FLOWING_COMPUTE(layer, op, x, weight, bias).to(x.dtype)


VARIANTS = {"fp32": ("fp32", FLOWING_COMPUTE), "bf16": ("bf16", FLOWING_COMPUTE),
            "bf16, each result widened": ("bf16", widening_compute)}


def measure(preset: str, steps: int, warmup: int, data_dir=None) -> dict:
    configs = {name: bench_config(preset, "torch", "default", precision=precision)
               for name, (precision, _) in VARIANTS.items()}
    compared = alternating_steps(
        configs, steps, warmup, lambda name: mock.patch.object(nets.LowPrecision, "compute", VARIANTS[name][1]),
        data_dir)
    return {"preset": preset, "steps": steps, "warmup": warmup, "machine": machine(),
            "variants": {name: {"median_step_s": row["median_step_s"], "speedup_over_fp32": row["speedup"]}
                         for name, row in compared.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan_pytorch_example")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("bf16_flow.json"))
    args = parser.parse_args()
    result = measure(args.preset, args.steps, args.warmup, args.data_dir)
    print(f"{args.preset}, PyTorch eager, {args.steps} alternating steps ({result['machine']['cpu']})")
    print(f"{'variant':24} {'step (s)':>9} {'speed-up over fp32':>19}")
    for name, row in result["variants"].items():
        print(f"{name:24} {row['median_step_s']:9.3f} {row['speedup_over_fp32']:18.2f}x")
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
