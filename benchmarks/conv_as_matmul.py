"""A tried and not kept fast path: a stride-2 convolution of dcgan_pytorch_example's D as im2col
(an NHWC unfold of the padded input, copied into one [B*OH*OW, C*k*k] matrix) and one matmul,
against PyTorch's oneDNN convolution. Forward, and forward with backward (autograd through the
unfold), on the preset's shapes in channels_last memory; prints a table and writes JSON.

    python benchmarks/conv_as_matmul.py --out conv_as_matmul.json
"""

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ganbench.bench.measure import machine, matmul_gflops, median_seconds

# dcgan_pytorch_example's D convolutions (4x4, stride 2, padding 1) at batch 64: C, O, input size
LAYERS = {"D.conv0": (1, 64, 64), "D.conv1": (64, 128, 32), "D.conv3": (256, 512, 8)}
BATCH, KERNEL, STRIDE, PAD = 64, 4, 2, 1
WARMUP = 3  # untimed calls before each timing


def conv_as_matmul(x, w, stride: int, pad: int):
    """conv2d(x, w) without bias: x NCHW indexed (channels_last memory), w [O, C, k, k]."""
    out_channels, k = w.shape[0], w.shape[2]
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, pad, pad, pad, pad))
    patches = padded.unfold(1, k, stride).unfold(2, k, stride)  # B, OH, OW, C, k, k
    b, oh, ow = patches.shape[:3]
    out = patches.reshape(b * oh * ow, -1) @ w.reshape(out_channels, -1).t()
    return out.view(b, oh, ow, out_channels).permute(0, 3, 1, 2)


def oneDNN(x, w, stride: int, pad: int):
    return F.conv2d(x, w, None, stride, pad)


def measure(name: str, repeats: int) -> list:
    channels, out_channels, size = LAYERS[name]
    x = torch.randn(BATCH, channels, size, size).to(memory_format=torch.channels_last).requires_grad_()
    w = (torch.randn(out_channels, channels, KERNEL, KERNEL) * 0.02).requires_grad_()
    reference = oneDNN(x, w, STRIDE, PAD)
    max_error = (conv_as_matmul(x, w, STRIDE, PAD) - reference).abs().max().item()
    gflop = 2 * out_channels * channels * KERNEL**2 * reference[0, 0].numel() * BATCH / 1e9
    grad = torch.randn_like(reference)
    rows = []
    for form in (oneDNN, conv_as_matmul):
        def forward_backward():
            x.grad = w.grad = None
            form(x, w, STRIDE, PAD).backward(grad)

        with torch.no_grad():
            forward = median_seconds(lambda: form(x, w, STRIDE, PAD), repeats, WARMUP) * 1e3
        both = median_seconds(forward_backward, repeats, WARMUP) * 1e3
        rows.append({"layer": name, "form": form.__name__, "gflop": gflop, "forward_ms": forward,
                     "forward_backward_ms": both, "forward_backward_gflops": 3 * gflop / both * 1e3,
                     "max_abs_error": max_error})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("conv_as_matmul.json"))
    args = parser.parse_args()
    matmul = matmul_gflops("torch")
    rows = [row for name in LAYERS for row in measure(name, args.repeats)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, matmul {matmul:.0f} GFLOP/s")
    print(f"{'layer':8} {'form':15} {'fwd (ms)':>9} {'fwd+bwd (ms)':>13} {'of matmul':>10} {'vs oneDNN':>10}")
    for row in rows:
        base = next(r for r in rows if r["layer"] == row["layer"] and r["form"] == "oneDNN")
        print(f"{row['layer']:8} {row['form']:15} {row['forward_ms']:9.2f} {row['forward_backward_ms']:13.2f} "
              f"{row['forward_backward_gflops'] / matmul:10.0%} "
              f"{base['forward_backward_ms'] / row['forward_backward_ms']:9.2f}x")
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "matmul_gflops": matmul,
              "rows": rows, "machine": machine()}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
