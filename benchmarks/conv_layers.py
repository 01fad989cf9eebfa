"""Each convolution of a preset's G and D timed alone, forward and backward, against the framework's
matmul rate: which layers hold a training step below that rate.

Every Conv and ConvT of the preset's networks is built by the backend's own layer code (without
spectral norm: the convolution alone), at the preset's batch and input shape, in the bench's
default mode (PyTorch eager, channels_last on a CPU; TensorFlow graph), on the device the backend
trains on. Forward: the median of the layer's call; backward: the median of the input and weight
gradients alone (PyTorch: of a kept graph; TensorFlow: a function that returns only the
gradients, from which grappler prunes the forward, as no convolution's gradient reads its
output). Rates count 2 FLOPs per multiply-add (backward: twice the forward's FLOPs) and are
divided by the same framework's matmul rate (bench.measure.matmul_gflops) in the same precision,
measured in the same process. --precision bf16 (or fp16) runs each layer as a step in that
precision does: input, weight and bias cast to it, the result widened back to float32, the casts
included in the times. Prints a table and writes JSON.

    python benchmarks/conv_layers.py --preset dcgan_tf_tutorial --backend tf --out conv_layers.json
"""

import argparse
import dataclasses
import json
from pathlib import Path

from ganbench.archs.flops import convolutions
from ganbench.bench.measure import bench_config, machine, matmul_gflops, median_seconds
from ganbench.precision import PRECISIONS, compute_dtype


def torch_passes(layer, shape: tuple, batch: int, low=None):
    """(forward, backward) of the layer as ganbench's PyTorch backend runs it."""
    import torch

    from ganbench.backends.torch.nets import make_layer, set_compute_dtype
    from ganbench.backends.torch.step import default_device

    device = default_device()  # and the backend's memory format there: channels_last on a CPU
    memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    module = make_layer(layer).to(device, memory_format=memory_format)
    set_compute_dtype(module, None if low is None else getattr(torch, low))
    x = torch.randn(batch, *shape, device=device).to(memory_format=memory_format).requires_grad_()
    y = module(x)
    upstream = torch.randn_like(y)

    def forward():
        with torch.no_grad():
            module(x)
        sync()

    def backward():
        torch.autograd.grad(y, [x, module.weight], upstream, retain_graph=True)
        sync()

    return forward, backward


def tf_passes(layer, shape: tuple, batch: int, low=None):
    """(forward, backward) of the layer as ganbench's TensorFlow backend runs it (graph)."""
    import tensorflow as tf

    from ganbench.archs import spec as S
    from ganbench.backends.tf.nets import Conv, ConvT

    module = (Conv if isinstance(layer, S.Conv) else ConvT)(layer, tf.float32)
    module.compute_dtype = None if low is None else tf.as_dtype(low)
    for var in module.vars.values():
        var.assign(tf.random.normal(var.shape) * 0.05)
    c, h, w = shape
    x = tf.random.normal([batch, h, w, c])
    y = module(x, True)
    upstream = tf.cast(tf.random.normal(y.shape), y.dtype)  # results flow in the low precision

    @tf.function
    def forward():
        return tf.reduce_sum(module(x, True))

    @tf.function
    def backward():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = module(x, True)
        return tape.gradient(y, [x, module.w], output_gradients=upstream)

    return lambda: forward().numpy(), lambda: [t.numpy() for t in backward()]


def measure(preset: str, backend: str, repeats: int, data_dir=None, precision: str = "fp32") -> dict:
    if backend == "tf":
        import ganbench.backends.tf  # noqa: F401  (TensorFlow before the data code's imports: else a crash)
    from ganbench.training import loop

    config, spec, _ = loop.prepare_data(bench_config(preset, backend, "default"), data_dir)  # the bench's spec
    passes = torch_passes if backend == "torch" else tf_passes
    matmul, low = matmul_gflops(backend, precision), compute_dtype(precision)
    rows = []
    for net in (spec.generator, spec.discriminator):
        for layer, shape in convolutions(net):
            layer = dataclasses.replace(layer, sn=False)
            forward, backward = passes(layer, shape, config.batch_size, low)
            fwd, bwd = median_seconds(forward, repeats, warmup=1), median_seconds(backward, repeats, warmup=1)
            out_hw = layer.out_size(shape[1])
            pixels = shape[1] * shape[2] if type(layer).__name__ == "ConvT" else out_hw * layer.out_size(shape[2])
            gflop = 2 * config.batch_size * pixels * layer.in_channels * layer.out_channels * layer.kernel**2 / 1e9
            rows.append({"net": net.name, "layer": layer.name, "kind": type(layer).__name__,
                         "channels": f"{layer.in_channels}->{layer.out_channels}", "in_hw": shape[1], "out_hw": out_hw,
                         "kernel": layer.kernel, "stride": layer.stride, "gflop": gflop,
                         "forward_ms": fwd * 1e3, "forward_of_matmul": gflop / fwd / matmul,
                         "backward_ms": bwd * 1e3, "backward_of_matmul": 2 * gflop / bwd / matmul})
    total_gflop = sum(3 * r["gflop"] for r in rows)
    total_s = sum(r["forward_ms"] + r["backward_ms"] for r in rows) / 1e3
    return {"preset": preset, "backend": backend, "precision": precision, "batch_size": config.batch_size,
            "matmul_gflops": matmul,
            "all_layers_once_of_matmul": total_gflop / total_s / matmul, "rows": rows, "machine": machine()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan_tf_tutorial")
    parser.add_argument("--backend", choices=["torch", "tf"], default="tf")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: $GANBENCH_DATA)")
    parser.add_argument("--out", type=Path, default=Path("conv_layers.json"))
    args = parser.parse_args()
    result = measure(args.preset, args.backend, args.repeats, args.data_dir, args.precision)
    print(f"{args.preset}, {args.backend} {args.precision}, batch {result['batch_size']}, "
          f"matmul {result['matmul_gflops']:.0f} GFLOP/s")
    print(f"{'layer':14} {'kind':5} {'channels':>10} {'in->out':>8} {'k/s':>4} {'GFLOP':>6} "
          f"{'fwd ms':>7} {'of mm':>6} {'bwd ms':>7} {'of mm':>6}")
    for r in result["rows"]:
        print(f"{r['net'] + '.' + r['layer']:14} {r['kind']:5} {r['channels']:>10} {r['in_hw']:>3}->{r['out_hw']:<3} "
              f"{r['kernel']}/{r['stride']:<2} {r['gflop']:6.2f} {r['forward_ms']:7.1f} {r['forward_of_matmul']:6.0%} "
              f"{r['backward_ms']:7.1f} {r['backward_of_matmul']:6.0%}")
    print(f"every layer once forward and backward: {result['all_layers_once_of_matmul']:.0%} of the matmul rate")
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
