"""Framework-free architecture description: a network is a sequence of small, explicit layers.

Shapes are channel-first (C, H, W), and every parameter is named `<layer>.<param>` in the
canonical tensor layout, which is PyTorch's: Dense (out, in), Conv (out, in, kh, kw),
ConvT (in, out, kh, kw), flatten order (C, H, W). Backends translate; they never lean on a
framework default (padding, eps, momentum, slope and init are all stated here).
"""

from dataclasses import dataclass, field

# Default init of DCGAN (Radford et al. 2016): weights N(0, 0.02), BN gamma N(1, 0.02), zero biases.
INIT_STD = 0.02


@dataclass(frozen=True)
class Dense:
    name: str
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class _Convolution:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int  # explicit, the same on every side
    bias: bool = True


@dataclass(frozen=True)
class Conv(_Convolution):
    """Convolution: out = (in + 2p - k) // s + 1."""


@dataclass(frozen=True)
class ConvT(_Convolution):
    """Transposed convolution with PyTorch's padding semantics: out = (in - 1) * s - 2p + k."""


@dataclass(frozen=True)
class BatchNorm:
    """BatchNorm over (N, H, W) per channel, PyTorch semantics: biased batch variance for the
    output, unbiased for the running variance, running = (1 - momentum) * running + momentum * batch."""

    name: str
    num_features: int
    eps: float = 1e-5
    momentum: float = 0.1


@dataclass(frozen=True)
class Act:
    kind: str  # "relu" | "leaky_relu" | "tanh"
    slope: float = 0.0


@dataclass(frozen=True)
class Reshape:
    shape: tuple  # (C, H, W)


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) -> C*H*W in channel-first order."""


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: tuple
    layers: tuple

    def param_shapes(self) -> dict:
        """Canonical name -> shape of every trainable parameter, in layer order."""
        shapes = {}
        for layer in self.layers:
            shapes.update(trainable_shapes(layer))
        return shapes

    def buffer_shapes(self) -> dict:
        """Canonical name -> shape of every non-trainable state tensor (BN running stats)."""
        return {
            f"{layer.name}.{buf}": (layer.num_features,)
            for layer in self.layers
            if isinstance(layer, BatchNorm)
            for buf in ("running_mean", "running_var")
        }


@dataclass(frozen=True)
class GANSpec:
    arch: str
    z_dim: int
    image_shape: tuple  # (C, H, W)
    generator: Network
    discriminator: Network
    notes: tuple = field(default=())

    @property
    def networks(self) -> dict:
        return {"G": self.generator, "D": self.discriminator}


def trainable_shapes(layer) -> dict:
    if isinstance(layer, Dense):
        shapes = {f"{layer.name}.weight": (layer.out_features, layer.in_features)}
        bias = layer.out_features
    elif isinstance(layer, Conv):
        shapes = {f"{layer.name}.weight": (layer.out_channels, layer.in_channels, layer.kernel, layer.kernel)}
        bias = layer.out_channels
    elif isinstance(layer, ConvT):
        shapes = {f"{layer.name}.weight": (layer.in_channels, layer.out_channels, layer.kernel, layer.kernel)}
        bias = layer.out_channels
    elif isinstance(layer, BatchNorm):
        return {f"{layer.name}.weight": (layer.num_features,), f"{layer.name}.bias": (layer.num_features,)}
    else:
        return {}
    if layer.bias:
        shapes[f"{layer.name}.bias"] = (bias,)
    return shapes
