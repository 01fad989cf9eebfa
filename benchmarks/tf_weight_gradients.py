"""What TensorFlow's bf16 step gains from weight gradients taken as matmuls (one process, steps alternating).

ganbench's TensorFlow convolutions in a low precision whose smaller map is at most 8x8, strided,
with a kernel at most twice the stride, take their weight gradient as matmuls over the larger map's
blocks (`tf_convolutions.weight_gradient_by_matmul`) instead of oneDNN's kernel. This script times each
preset's bf16 step both ways in one process, the steps alternating, and prints the median step
and the median of the per-step ratios; then each convolution's weight gradient alone, both ways,
at the preset's batch and shapes, and whether the rule picks the matmuls. With --precision fp32,
the float32 step (which keeps oneDNN's kernels) against the same step with the matmuls where the
bf16 rule would take them. Writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/tf_weight_gradients.py --out tf_weight_gradients.json
"""

import argparse
import json
from pathlib import Path
from unittest import mock

import ganbench.backends.tf  # noqa: F401  (TensorFlow before the data code's imports)
import tensorflow as tf

from ganbench.archs import spec as S
from ganbench.archs.flops import convolutions
from ganbench.backends.tf import convolutions as tf_convolutions
from ganbench.bench.measure import alternating_steps, bench_config, machine, median_seconds
from ganbench.training import loop

BY_MATMUL = tf_convolutions.weight_gradient_by_matmul_pays


def rules(precision: str) -> dict:
    """The step's two forms; in float32 the matmuls as the bf16 rule would pick them (ganbench's
    float32 steps keep the kernels)."""
    if precision == "bf16":
        return {"oneDNN's kernel": lambda layer, small_side, dtype: False, "by matmul (ganbench)": BY_MATMUL}
    return {"oneDNN's kernel (ganbench)": lambda layer, small_side, dtype: False,
            "by matmul": lambda layer, small_side, dtype: BY_MATMUL(layer, small_side, tf.bfloat16)}


def measure(preset: str, steps: int, warmup: int, data_dir=None, precision: str = "bf16") -> dict:
    """The step in each of rules(precision), oneDNN's first; the rule is read while the step is
    traced (its first call)."""
    forms = rules(precision)
    return alternating_steps(
        {name: bench_config(preset, "tf", "default", precision=precision) for name in forms}, steps, warmup,
        lambda name: mock.patch.object(tf_convolutions, "weight_gradient_by_matmul_pays", forms[name]), data_dir)


def uses(layer, side: int, small_side: int, precision: str) -> str:
    """What ganbench's bf16 step takes the layer's weight gradient with."""
    if precision == "fp32":  # the float32 steps keep the kernels
        return "oneDNN"
    if isinstance(layer, S.ConvT) and side == 1 and layer.pads == (0, 0):
        return "one matmul (tf_convolutions.transposed_from_a_pixel)"
    return "matmuls" if BY_MATMUL(layer, small_side, tf.bfloat16) else "oneDNN"


def layer_weight_gradients(preset: str, repeats: int, data_dir=None, precision: str = "bf16") -> list:
    """Each convolution's weight gradient alone (ms): oneDNN's kernel and the matmuls."""
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    config, spec, _ = loop.prepare_data(bench_config(preset, "tf", "default"), data_dir)
    rows = []
    for net in (spec.generator, spec.discriminator):
        for layer, (channels, side, _) in convolutions(net):
            out_side = layer.out_size(side)
            x = tf.cast(tf.random.normal([config.batch_size, side, side, channels]), dtype)
            y = tf.cast(tf.random.normal([config.batch_size, out_side, out_side, layer.out_channels]), dtype)
            # the convolution that the weight gradient sums over maps the larger map to the smaller
            large, small = (y, x) if isinstance(layer, S.ConvT) else (x, y)
            w_shape = [layer.kernel, layer.kernel, large.shape[3], small.shape[3]]
            (before, after), stride = layer.pads, layer.stride
            kernel = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
                input=tf.pad(large, [[0, 0], [before, after], [before, after], [0, 0]]), filter_sizes=w_shape,
                out_backprop=small, strides=[1, stride, stride, 1], padding="VALID"))
            matmuls = tf.function(lambda: tf_convolutions.weight_gradient_by_matmul(layer, large, small, w_shape))
            rows.append({"layer": f"{net.name}.{layer.name}", "kind": type(layer).__name__,
                         "channels": f"{layer.in_channels}->{layer.out_channels}", "maps": f"{side}->{out_side}",
                         "kernel_stride": f"{layer.kernel}/{stride}",
                         "uses": uses(layer, side, small.shape[1], precision),
                         "onednn_ms": 1e3 * median_seconds(lambda: kernel().numpy(), repeats, warmup=1),
                         "matmuls_ms": 1e3 * median_seconds(lambda: matmuls().numpy(), repeats, warmup=1)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan,dcgan_pytorch_example,dcgan_tf_tutorial")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--repeats", type=int, default=10, help="timings of each layer's weight gradient")
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("tf_weight_gradients.json"))
    args = parser.parse_args()
    presets = args.presets.split(",")
    result = {"precision": args.precision, "steps": args.steps, "warmup": args.warmup, "machine": machine(),
              "presets": {preset: {} for preset in presets}}
    print(f"TensorFlow {args.precision} graph step, {args.steps} alternating steps ({result['machine']['cpu']})")
    print(f"{'preset':22} {'weight gradients':26} {'step (s)':>9} {'speed-up':>9}")
    for preset in presets:
        result["presets"][preset]["steps"] = measure(preset, args.steps, args.warmup, args.data_dir, args.precision)
        for name, row in result["presets"][preset]["steps"].items():
            print(f"{preset:22} {name:26} {row['median_step_s']:9.3f} {row['speedup']:8.2f}x", flush=True)
    print(f"\neach weight gradient alone, {args.precision} (ms)\n{'preset':22} {'layer':11} {'channels':>10} "
          f"{'maps':>7} {'k/s':>4} {'oneDNN':>7} {'matmuls':>8}  ganbench uses")
    for preset in presets:
        rows = layer_weight_gradients(preset, args.repeats, args.data_dir, args.precision)
        result["presets"][preset]["layers"] = rows
        for r in rows:
            print(f"{preset:22} {r['layer']:11} {r['channels']:>10} {r['maps']:>7} {r['kernel_stride']:>4} "
                  f"{r['onednn_ms']:7.1f} {r['matmuls_ms']:8.1f}  {r['uses']}", flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
