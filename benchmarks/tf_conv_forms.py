"""Convolution forms tried in TensorFlow against its own (oneDNN's) kernels, and the one ganbench kept.

Each convolution of a preset is two linear maps: "down", the convolution from the larger map to
the smaller (a Conv's forward, a ConvT's input gradient), and "up", its adjoint (a ConvT's
forward, a Conv's input gradient). This script times each map, at the preset's batch and shapes,
as TensorFlow's op and in the forms that might beat it on a CPU:

- winograd F(2, k) / F(4, k) (stride 1, float32): Winograd's minimal filtering, 2x2 or 4x4
  outputs per tile from (m + k - 1)^2 products instead of (m k)^2; "up" as "down" with the kernel
  flipped and its channels swapped.
- blocks (strided "down"): the larger map's stride x stride blocks as channels, the (k/s)^2 block
  offsets' slices side by side (im2col over blocks), one matmul.
- matmul (strided "up"): one matmul of each smaller-map pixel with the whole kernel, then the
  (k/s)^2 offsets' shifted sums laid out by depth_to_space (col2im): tf_convolutions.transposed_by_matmul,
  which ganbench uses where the larger map has one channel (tf_convolutions.transposed_by_matmul_pays).

Each form is checked against TensorFlow's op in float64 (max abs error, batch 2). Then each
preset's step is timed with TensorFlow's kernels, with the matmul form for the transposed
convolutions only (G's last layer) and as ganbench runs it (also the input gradient of D's
first), the steps alternating in one process. Prints tables and writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/tf_conv_forms.py --out tf_conv_forms.json
"""

import argparse
import json
from pathlib import Path
from unittest import mock

import ganbench.backends.tf  # noqa: F401  (TensorFlow before the data code's imports)
import numpy as np
import tensorflow as tf

from ganbench.archs import spec as S
from ganbench.archs.flops import convolutions
from ganbench.backends.tf import convolutions as tf_convolutions
from ganbench.bench.measure import alternating_steps, bench_config, machine, median_seconds
from ganbench.training import loop

DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16}
# Winograd's interpolation points (infinity is added): the usual small ones, F(4, k) with +-1/2
POINTS = {2: (0, 1, -1, 2, -2), 4: (0, 1, -1, 2, -2, 0.5, -0.5)}
BY_MATMUL = tf_convolutions.transposed_by_matmul_pays
STEP_FORMS = {"TensorFlow's kernels": lambda layer, large_channels: False,
              "matmul for G's last layer": lambda layer, large_channels: (
                  isinstance(layer, S.ConvT) and BY_MATMUL(layer, large_channels)),
              "and for D's first (ganbench)": BY_MATMUL}


def winograd_matrices(m: int, r: int):
    """A^T (m x n), G (n x r), B^T (n x n), n = m + r - 1, for the correlation of m outputs with an
    r-tap filter: the transpose of the Toom-Cook linear convolution (evaluate both polynomials at
    the points and infinity, multiply, interpolate), so A^T and G are Vandermonde matrices and B
    the interpolation (the inverse Vandermonde)."""
    points = POINTS[m][: m + r - 2]

    def vandermonde(columns):
        rows = [[float(a) ** i for i in range(columns)] for a in points]
        return np.array(rows + [[0.0] * (columns - 1) + [1.0]])  # infinity: the leading coefficient

    return vandermonde(m).T, vandermonde(r), np.linalg.inv(vandermonde(m + r - 1)).T


def winograd(x, w, m: int, pads, out_side: int):
    """Stride-1 conv2d of NHWC x with HWIO w and pads (before, after), F(m, k) in 2-D: each
    (m + k - 1)^2 input tile transformed (B^T d B), multiplied channel-wise with the transformed
    kernel (G g G^T) as one batched matmul per tile position, transformed back (A^T M A)."""
    k, n = w.shape[0], m + w.shape[0] - 1
    a_t, g, b_t = (tf.constant(matrix, x.dtype) for matrix in winograd_matrices(m, k))
    tiles = -(-out_side // m)
    needed = tiles * m + k - 1
    before = pads[0]
    x = tf.pad(x, [[0, 0], [before, needed - x.shape[1] - before], [before, needed - x.shape[2] - before], [0, 0]])
    index = np.array([[t * m + i for i in range(n)] for t in range(tiles)])
    rows = tf.einsum("ai,btiwc->btawc", b_t, tf.gather(x, index, axis=1))
    data = tf.einsum("bj,xtaujc->abxtuc", b_t, tf.gather(rows, index, axis=3))
    kernel = tf.einsum("ai,ijck,bj->abck", g, w, g)
    products = tf.matmul(tf.reshape(data, [n, n, -1, x.shape[3]]), kernel)
    products = tf.reshape(products, [n, n, -1, tiles, tiles, w.shape[3]])
    y = tf.einsum("ia,jb,abxtuk->xtiujk", a_t, a_t, products)
    return tf.reshape(y, [-1, tiles * m, tiles * m, w.shape[3]])[:, :out_side, :out_side, :]


def down_by_blocks(layer, large, w, side: int):
    """conv2d(large) to side x side: the offsets' block slices side by side, one matmul."""
    m = -(-layer.kernel // layer.stride)
    blocks = tf_convolutions.larger_map_blocks(layer, large, side)
    columns = tf.concat([blocks[:, p:p + side, r:r + side, :] for p in range(m) for r in range(m)], axis=-1)
    weights = tf_convolutions.block_weights(layer, w)
    return tf.tensordot(columns, tf.reshape(weights, [-1, weights.shape[-1]]), 1)


def flipped(w):
    """The stride-1 "up" map's kernel as a "down" one: taps reversed, channels swapped."""
    return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])


def maps(layer, channels: int, side: int):
    """(larger side, its channels, smaller side, its channels) of the layer's down and up maps."""
    out_side = layer.out_size(side)
    if isinstance(layer, S.ConvT):
        return out_side, layer.out_channels, side, channels
    return side, channels, out_side, layer.out_channels


def forms(layer, large_side: int, small_side: int, precision: str) -> dict:
    """{(map, form): fn(input, w)} of TensorFlow's ops and the alternatives that apply."""
    s, pads, k = layer.stride, layer.pads, layer.kernel
    found = {("down", "TensorFlow"): lambda x, w: tf_convolutions.down(layer, x, w),
             ("up", "TensorFlow"): lambda x, w: tf_convolutions.transposed_kernel(layer, x, w, large_side)}
    if s == 1 and k >= 3 and precision == "fp32":  # Winograd's transforms lose too much in bf16
        flipped_pads = (k - 1 - pads[0], k - 1 - pads[1])
        for m in POINTS:
            found[("down", f"winograd F({m},{k})")] = (
                lambda x, w, m=m: winograd(x, w, m, pads, small_side))
            found[("up", f"winograd F({m},{k})")] = (
                lambda x, w, m=m: winograd(x, flipped(w), m, flipped_pads, large_side))
    if s > 1:
        found[("down", "blocks")] = lambda x, w: down_by_blocks(layer, x, w, small_side)
        found[("up", "matmul")] = lambda x, w: tf_convolutions.transposed_by_matmul(layer, x, w, large_side)
    return found


def measure_layer(layer, channels: int, side: int, batch: int, precision: str, repeats: int) -> list:
    large_side, large_channels, small_side, small_channels = maps(layer, channels, side)
    shapes = {"down": [large_side, large_side, large_channels], "up": [small_side, small_side, small_channels]}
    w_shape = [layer.kernel, layer.kernel, large_channels, small_channels]
    w64 = tf.random.normal(w_shape, stddev=0.05, dtype=tf.float64)
    inputs64 = {direction: tf.random.normal([2, *shape], dtype=tf.float64) for direction, shape in shapes.items()}
    dtype = DTYPES[precision]
    w = tf.cast(w64, dtype)
    inputs = {direction: tf.cast(tf.random.normal([batch, *shape]), dtype) for direction, shape in shapes.items()}
    found = forms(layer, large_side, small_side, precision)
    rows = []
    for (direction, form), fn in found.items():
        reference = found[(direction, "TensorFlow")](inputs64[direction], w64)
        error = float(tf.reduce_max(tf.abs(fn(inputs64[direction], w64) - reference)))
        run = tf.function(lambda fn=fn, x=inputs[direction]: fn(x, w))
        rows.append({"map": direction, "form": form, "float64_max_error": error,
                     "ms": 1e3 * median_seconds(lambda: run().numpy(), repeats, warmup=2)})
    for row in rows:
        row["speedup"] = next(r["ms"] for r in rows if r["map"] == row["map"] and r["form"] == "TensorFlow") / row["ms"]
    return rows


def measure(preset: str, precision: str, repeats: int, data_dir=None) -> list:
    config, spec, _ = loop.prepare_data(bench_config(preset, "tf", "default"), data_dir)
    rows = []
    for net in (spec.generator, spec.discriminator):
        for layer, (channels, side, _) in convolutions(net):
            large_side, large_channels, small_side, small_channels = maps(layer, channels, side)
            if small_side == 1:  # a one-pixel end: a matmul either way (tf_convolutions.transposed_from_a_pixel)
                continue
            for row in measure_layer(layer, channels, side, config.batch_size, precision, repeats):
                rows.append({"preset": preset, "precision": precision, "batch": config.batch_size,
                             "layer": f"{net.name}.{layer.name}", "kind": type(layer).__name__,
                             "forward": row["map"] == ("up" if isinstance(layer, S.ConvT) else "down"),
                             "maps": f"{large_channels}x{large_side}^2 <-> {small_channels}x{small_side}^2",
                             "kernel_stride": f"{layer.kernel}/{layer.stride}", **row})
    return rows


def measure_steps(preset: str, precision: str, steps: int, warmup: int, data_dir=None) -> dict:
    """The step in each of STEP_FORMS, the steps alternating in one process; the rule is read while
    the step is traced (its first call)."""
    return alternating_steps(
        {name: bench_config(preset, "tf", "default", precision=precision) for name in STEP_FORMS}, steps, warmup,
        lambda name: mock.patch.object(tf_convolutions, "transposed_by_matmul_pays", STEP_FORMS[name]), data_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan_tf_tutorial:fp32,dcgan_pytorch_example:fp32,dcgan_pytorch_example:bf16",
                        help="comma-separated preset:precision pairs (precision fp32 or bf16)")
    parser.add_argument("--step-presets", default="dcgan_tf_tutorial:fp32,dcgan_pytorch_example:fp32,"
                        "dcgan_pytorch_example:bf16,dcgan:fp32,dcgan:bf16",
                        help="the same for the step comparison; '' skips it")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each form")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each form in the step comparison")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("tf_conv_forms.json"))
    args = parser.parse_args()
    result = {"machine": machine(), "tensorflow": tf.__version__, "repeats": args.repeats, "rows": [],
              "steps": args.steps, "warmup": args.warmup, "step_forms": {}}
    print(f"TensorFlow {tf.__version__}, {result['machine']['cpu']}: each map alone, median of {args.repeats} calls")
    print(f"{'preset':22} {'prec':4} {'layer':10} {'maps':>28} {'k/s':>4} {'map':>5} {'form':16} "
          f"{'ms':>7} {'speed-up':>8} {'f64 error':>9}")
    for pair in filter(None, args.presets.split(",")):
        preset, precision = pair.split(":")
        for r in measure(preset, precision, args.repeats, args.data_dir):
            result["rows"].append(r)
            direction = r["map"] + ("*" if r["forward"] else "")
            print(f"{preset:22} {precision:4} {r['layer']:10} {r['maps']:>28} {r['kernel_stride']:>4} {direction:>5} "
                  f"{r['form']:16} {r['ms']:7.2f} {r['speedup']:7.2f}x {r['float64_max_error']:9.1e}", flush=True)
    print("(* the layer's forward; the other map is its input gradient)")
    print(f"\nthe step, {args.steps} alternating steps after {args.warmup}\n"
          f"{'preset':22} {'prec':4} {'transposed maps to one channel':30} {'step (s)':>9} {'speed-up':>9}")
    for pair in filter(None, args.step_presets.split(",")):
        preset, precision = pair.split(":")
        forms = measure_steps(preset, precision, args.steps, args.warmup, args.data_dir)
        result["step_forms"][pair] = forms
        for name, row in forms.items():
            print(f"{preset:22} {precision:4} {name:30} {row['median_step_s']:9.3f} {row['speedup']:8.2f}x", flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
