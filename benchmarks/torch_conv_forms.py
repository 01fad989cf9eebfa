"""A tried and not kept form in PyTorch: transposed convolutions to one channel on the CPU as one
matmul and shifted sums (TensorFlow's convolutions.transposed_by_matmul, written here in PyTorch), alone and
in the step.

A strided convolution from one channel (D's first layer on MNIST) and a transposed one to one
channel (G's last) share that transposed map: the ConvTranspose2d's forward, the Conv2d's input
gradient. This script times both layers alone at each preset's batch and shapes (channels_last,
as the step runs), in float32 and bf16, with oneDNN's kernels and with the matmul form (the
other gradients by PyTorch's kernels): the forward without gradients (D's fakes, sampling), and
the forward with the input and weight gradients. Then each preset's step both ways, the steps
alternating in one process. Prints tables and writes JSON. TensorFlow's counterpart, whose
steps gained, is benchmarks/tf_conv_forms.py.

    GANBENCH_DATA=../shared/data python benchmarks/torch_conv_forms.py --out torch_conv_forms.json
"""

import argparse
import contextlib
import json
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.archs import spec as S
from ganbench.archs.flops import convolutions
from ganbench.backends.torch import nets
from ganbench.bench.measure import alternating_steps, bench_config, machine, median_seconds
from ganbench.training import loop


def transposed_by_matmul(small, weight, stride: int, padding: int, large_side: int):
    """F.conv_transpose2d(small, weight, stride=stride, padding=padding) with weight [C, 1, k, k],
    to large_side: each pixel times the whole kernel (one matmul), the products of block offset
    (p, r) (taps s*p + q, s*r + t; the kernel padded to m*s taps, m = ceil(k/s)) shifted by it and
    summed, the stride x stride blocks laid out, the padding cut off."""
    b, c, h, _ = small.shape
    k, s = weight.shape[2], stride
    m = -(-k // s)
    w = F.pad(weight.reshape(c, k, k), (0, m * s - k, 0, m * s - k))
    w = w.reshape(c, m, s, m, s).permute(0, 1, 3, 2, 4).reshape(c, m * m * s * s)  # (p, r, q, t)
    per_pixel = (small.permute(0, 2, 3, 1).reshape(-1, c) @ w).reshape(b, h, h, m, m, s, s)
    summed = sum(F.pad(per_pixel[:, :, :, p, r], (0, 0, 0, 0, r, m - 1 - r, p, m - 1 - p))
                 for p in range(m) for r in range(m))                                 # [b, i, j, q, t]
    side = (h + m - 1) * s
    full = summed.permute(0, 1, 3, 2, 4).reshape(b, 1, side, side)
    end = padding + large_side
    grow = max(end - side, 0)  # rows no tap reaches: zero
    return F.pad(full, (0, grow, 0, grow))[:, :, padding:end, padding:end]


class TransposedToOneChannel(torch.autograd.Function):
    """F.conv_transpose2d to one channel as transposed_by_matmul; its gradients by PyTorch's kernels."""

    @staticmethod
    def forward(ctx, small, weight, stride: int, padding: int, large_side: int):
        ctx.save_for_backward(small, weight)
        ctx.stride, ctx.padding = stride, padding
        return transposed_by_matmul(small, weight, stride, padding, large_side)

    @staticmethod
    def backward(ctx, grad):
        small, weight = ctx.saved_tensors
        s, p = ctx.stride, ctx.padding
        d_small = F.conv2d(grad, weight, None, s, p) if ctx.needs_input_grad[0] else None
        d_weight = torch.nn.grad.conv2d_weight(grad, weight.shape, small, s, p) if ctx.needs_input_grad[1] else None
        return d_small, d_weight, None, None, None


class ConvFromOneChannel(torch.autograd.Function):
    """F.conv2d of a one-channel input, its input gradient as transposed_by_matmul."""

    @staticmethod
    def forward(ctx, large, weight, stride: int, padding: int):
        ctx.save_for_backward(large, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(large, weight, None, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        large, weight = ctx.saved_tensors
        s, p = ctx.stride, ctx.padding
        d_large = transposed_by_matmul(grad, weight, s, p, large.shape[2]) if ctx.needs_input_grad[0] else None
        d_weight = torch.nn.grad.conv2d_weight(large, weight.shape, grad, s, p) if ctx.needs_input_grad[1] else None
        return d_large, d_weight, None, None


def with_bias(out, bias):
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def conv_forward(module, x, weight, bias):
    """nets.Conv2d's convolution with the matmul form where the input has one channel."""
    if module.in_channels == 1 and module.stride[0] >= 2:
        return with_bias(ConvFromOneChannel.apply(x, weight, module.stride[0], module.padding[0]), bias)
    return nn.Conv2d._conv_forward(module, x, weight, bias)


KERNEL_TRANSPOSED = nets.ConvTranspose2d._transposed


def transposed(module, x, weight, bias):
    """nets.ConvTranspose2d's transposed convolution with the matmul form to one channel."""
    if module.out_channels == 1 and module.stride[0] >= 2:
        s, p = module.stride[0], module.padding[0]
        side = (x.shape[2] - 1) * s + module.kernel_size[0] - 2 * p
        return with_bias(TransposedToOneChannel.apply(x, weight, s, p, side), bias)
    return KERNEL_TRANSPOSED(module, x, weight, bias)


def form(name: str):
    """The patches that put `name`'s form in place (read at each call: eager PyTorch)."""
    if name.startswith("oneDNN"):
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(nets.Conv2d, "_conv_forward", conv_forward))
    stack.enter_context(mock.patch.object(nets.ConvTranspose2d, "_transposed", transposed))
    return stack


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FORMS = ("oneDNN's kernels", "matmul")


def one_channel_layers(preset: str, data_dir=None) -> list:
    """(name, spec layer, input (C, H, W), batch) of the preset's strided convolutions from or to
    one channel."""
    config, spec, _ = loop.prepare_data(bench_config(preset, "torch", "default"), data_dir)
    return [(f"{net.name}.{layer.name}", layer, shape, config.batch_size)
            for net in (spec.generator, spec.discriminator) for layer, shape in convolutions(net)
            if layer.stride >= 2 and 1 in ((layer.out_channels,) if isinstance(layer, S.ConvT) else (shape[0],))]


def float64_error(layer, shape) -> float:
    """The largest difference between the two forms' outputs and gradients in float64, batch 2."""
    module = nets.make_layer(layer).double()
    x = torch.randn(2, *shape, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn_like(module(x))
    results = []
    for name_of_form in FORMS:
        with form(name_of_form):
            y = module(x)
            results.append([y, *torch.autograd.grad(y, [x, module.weight], upstream)])
    return max((a - b).abs().max().item() for a, b in zip(*results))


def measure_layers(preset: str, repeats: int, data_dir=None) -> list:
    rows = []
    for name, layer, shape, batch in one_channel_layers(preset, data_dir):
        for precision, dtype in DTYPES.items():
            module = nets.make_layer(layer).to(dtype)
            x = torch.randn(batch, *shape).to(dtype, memory_format=torch.channels_last).requires_grad_()
            upstream = torch.randn_like(module(x))
            times = {}
            for name_of_form in FORMS:
                with form(name_of_form):
                    with torch.no_grad():
                        forward = 1e3 * median_seconds(lambda: module(x), repeats, warmup=2)
                    both = 1e3 * median_seconds(
                        lambda: torch.autograd.grad(module(x), [x, module.weight], upstream), repeats, warmup=2)
                times[name_of_form] = (forward, both)
            (kernel_forward, kernel_both), (matmul_forward, matmul_both) = times.values()
            rows.append({"preset": preset, "layer": name, "kind": type(layer).__name__, "precision": precision,
                         "batch": batch, "channels": f"{shape[0]}->{layer.out_channels}", "input_side": shape[1],
                         "kernel_stride": f"{layer.kernel}/{layer.stride}",
                         "float64_max_error": float64_error(layer, shape),
                         "forward_ms": {"oneDNN": kernel_forward, "matmul": matmul_forward},
                         "forward_backward_ms": {"oneDNN": kernel_both, "matmul": matmul_both}})
    return rows


def measure_steps(preset: str, precision: str, steps: int, warmup: int, data_dir=None) -> dict:
    return alternating_steps({name: bench_config(preset, "torch", "default", precision=precision) for name in FORMS},
                             steps, warmup, form, data_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan,dcgan_pytorch_example,dcgan_tf_tutorial")
    parser.add_argument("--precisions", default="fp32,bf16", help="of the step comparison")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each map")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("torch_conv_forms.json"))
    args = parser.parse_args()
    presets = args.presets.split(",")
    result = {"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "repeats": args.repeats, "steps": args.steps, "warmup": args.warmup, "layers": [], "step_forms": {}}
    print(f"PyTorch {torch.__version__}, {result['machine']['cpu']}, {result['threads']} threads: the layers "
          f"alone, median of {args.repeats} calls (ms)")
    print(f"{'preset':22} {'layer':10} {'channels':>8} {'in':>3} {'k/s':>4} {'prec':4} {'fwd oneDNN':>10} "
          f"{'matmul':>7} {'f+b oneDNN':>10} {'matmul':>7} {'f64 error':>9}")
    for preset in presets:
        for r in measure_layers(preset, args.repeats, args.data_dir):
            result["layers"].append(r)
            f, fb = r["forward_ms"], r["forward_backward_ms"]
            print(f"{preset:22} {r['layer']:10} {r['channels']:>8} {r['input_side']:3} {r['kernel_stride']:>4} "
                  f"{r['precision']:4} {f['oneDNN']:10.2f} {f['matmul']:7.2f} {fb['oneDNN']:10.2f} {fb['matmul']:7.2f} "
                  f"{r['float64_max_error']:9.1e}",
                  flush=True)
    print(f"\nthe step, {args.steps} alternating steps after {args.warmup}\n"
          f"{'preset':22} {'prec':4} {'form':18} {'step (s)':>9} {'speed-up':>9}")
    for preset in presets:
        for precision in args.precisions.split(","):
            forms = measure_steps(preset, precision, args.steps, args.warmup, args.data_dir)
            result["step_forms"][f"{preset}:{precision}"] = forms
            for name, row in forms.items():
                print(f"{preset:22} {precision:4} {name:18} {row['median_step_s']:9.3f} {row['speedup']:8.2f}x",
                      flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
