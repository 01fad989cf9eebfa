"""Analytic FLOP counts from a spec: convolutions and dense layers only (2 FLOPs per
multiply-add); BatchNorm, activations and the optimiser are elementwise and left out."""

from ganbench.archs import spec as S


def forward_macs(net: S.Network) -> dict:
    """Layer name -> multiply-adds of one forward pass for one input, tracking the shape."""
    macs = {}
    _walk(net.layers, tuple(net.input_shape), macs)
    return macs


def convolutions(net: S.Network) -> list:
    """(layer, input shape (C, H, W)) of each Conv and ConvT of `net`, in forward order."""
    found = []
    _walk(net.layers, tuple(net.input_shape), {}, found)
    return found


def _walk(layers, shape: tuple, macs: dict, convolutions: list | None = None) -> tuple:
    """Add the MACs of `layers` applied to `shape` into `macs` (and each convolution with its input
    shape to `convolutions`); return the output shape."""
    for layer in layers:
        if convolutions is not None and isinstance(layer, (S.Conv, S.ConvT)):
            convolutions.append((layer, shape))
        if isinstance(layer, S.Residual):
            out = _walk(layer.main, shape, macs, convolutions)
            _walk(layer.shortcut, shape, macs, convolutions)
            shape = out
        elif isinstance(layer, S.Upsample):
            c, h, w = shape
            shape = (c, 2 * h, 2 * w)
        elif isinstance(layer, (S.AvgPool, S.MaxPool)):
            c, h, w = shape
            shape = (c, h // 2, w // 2)
        elif isinstance(layer, S.SelfAttention):
            macs.update(attention_macs(layer, shape))
        elif isinstance(layer, S.CondBatchNorm):
            for part in layer.parts()[1:]:  # gain and bias: one Dense each on the conditioning vector
                macs[part.name] = part.in_features * part.out_features
        elif isinstance(layer, S.Projection):
            macs[layer.name] = layer.dim
        elif isinstance(layer, S.GlobalPool):
            shape = (shape[0],)
        elif isinstance(layer, S.Dense):
            macs[layer.name] = layer.in_features * layer.out_features
            shape = (layer.out_features,)
        elif isinstance(layer, S.Conv):
            _, h, w = shape
            ho, wo = layer.out_size(h), layer.out_size(w)
            macs[layer.name] = ho * wo * layer.out_channels * layer.in_channels * layer.kernel**2
            shape = (layer.out_channels, ho, wo)
        elif isinstance(layer, S.ConvT):
            _, h, w = shape  # every input pixel scatters a k x k x out_channels patch
            macs[layer.name] = h * w * layer.in_channels * layer.out_channels * layer.kernel**2
            shape = (layer.out_channels, layer.out_size(h), layer.out_size(w))
        elif isinstance(layer, S.Reshape):
            shape = tuple(layer.shape)
        elif isinstance(layer, S.Flatten):
            size = 1
            for dim in shape:
                size *= dim
            shape = (size,)
    return shape


def attention_macs(layer: S.SelfAttention, shape: tuple) -> dict:
    """The four 1x1 convolutions (theta at full resolution, phi and g before their 2x2 pooling, o on
    the attended g) and the two batched matmuls: theta^T phi [HW x HW/4 over C/8] and g attention^T
    [C/2 x HW over HW/4]."""
    _, h, w = shape
    positions = h * w
    out = {part.name: positions * part.in_channels * part.out_channels for part in layer.parts()}
    c8, c2 = layer.parts()[0].out_channels, layer.parts()[2].out_channels
    out[f"{layer.name}_matmuls"] = positions * (positions // 4) * (c8 + c2)
    return out


def train_step_flops(spec: S.GANSpec, config) -> int:
    """FLOPs of one training step of `config` (a TrainConfig) as ganbench runs it. A network
    call's backward counts 2x its forward (input and weight gradients); D's backward inside a G
    update counts 1x (input gradients only). Alternating: per D update a G forward, D on real and
    fake and their backward (WGAN-GP adds the critic on interpolates, its input gradient and the
    backward through both: 6x D); then the G update: a fresh G forward when batch_size_g > 0 (else
    it reuses the last fakes), D forward, D input gradients, G backward. Simultaneous: one G
    forward, D on real and fake, both backward, G backward."""
    g = sum(forward_macs(spec.generator).values())
    d = sum(forward_macs(spec.discriminator).values())
    if config.update == "simultaneous":
        return 2 * config.batch_size * (g + 2 * d + 2 * (2 * d) + 2 * g)
    d_update = g + 2 * d + 2 * (2 * d) + (6 * d if config.loss == "wgan-gp" else 0)
    g_update = (g if config.batch_size_g else 0) + d + d + 2 * g
    return 2 * (config.n_dis * config.batch_size * d_update + (config.batch_size_g or config.batch_size) * g_update)
