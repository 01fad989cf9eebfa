"""Analytic FLOP counts from a spec: convolutions and dense layers only (2 FLOPs per
multiply-add); BatchNorm, activations and the optimiser are elementwise and left out."""

from ganbench.archs import spec as S


def forward_macs(net: S.Network) -> dict:
    """Layer name -> multiply-adds of one forward pass for one input, tracking the shape."""
    macs = {}
    _walk(net.layers, tuple(net.input_shape), macs)
    return macs


def _walk(layers, shape: tuple, macs: dict) -> tuple:
    """Add the MACs of `layers` applied to `shape` into `macs`; return the output shape."""
    for layer in layers:
        if isinstance(layer, S.Residual):
            out = _walk(layer.main, shape, macs)
            _walk(layer.shortcut, shape, macs)
            shape = out
        elif isinstance(layer, S.Upsample):
            c, h, w = shape
            shape = (c, 2 * h, 2 * w)
        elif isinstance(layer, S.AvgPool):
            c, h, w = shape
            shape = (c, h // 2, w // 2)
        elif isinstance(layer, S.GlobalPool):
            shape = (shape[0],)
        elif isinstance(layer, S.Dense):
            macs[layer.name] = layer.in_features * layer.out_features
            shape = (layer.out_features,)
        elif isinstance(layer, S.Conv):
            _, h, w = shape
            ho = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
            wo = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
            macs[layer.name] = ho * wo * layer.out_channels * layer.in_channels * layer.kernel**2
            shape = (layer.out_channels, ho, wo)
        elif isinstance(layer, S.ConvT):
            _, h, w = shape  # every input pixel scatters a k x k x out_channels patch
            macs[layer.name] = h * w * layer.in_channels * layer.out_channels * layer.kernel**2
            ho = (h - 1) * layer.stride - 2 * layer.padding + layer.kernel
            wo = (w - 1) * layer.stride - 2 * layer.padding + layer.kernel
            shape = (layer.out_channels, ho, wo)
        elif isinstance(layer, S.Reshape):
            shape = tuple(layer.shape)
        elif isinstance(layer, S.Flatten):
            size = 1
            for dim in shape:
                size *= dim
            shape = (size,)
    return shape


def train_step_flops(spec: S.GANSpec, batch: int, n_dis: int = 1) -> int:
    """FLOPs of one training step as ganbench runs it (backward = 2x forward: input and weight
    gradients). Per D update: G forward, D forward on real and fake, their backward. The G update
    reuses the last fake batch: D forward, D backward for input gradients only (1x), G backward."""
    g = sum(forward_macs(spec.generator).values())
    d = sum(forward_macs(spec.discriminator).values())
    per_d_update = g + 2 * d + 2 * (2 * d)
    g_update = d + d + 2 * g
    return 2 * batch * (n_dis * per_d_update + g_update)
