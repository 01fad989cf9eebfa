"""Framework-free architecture description: a network is a sequence of small, explicit layers.

Shapes are channel-first (C, H, W), and every parameter is named `<layer>.<param>` in the
canonical tensor layout, which is PyTorch's: Dense (out, in), Conv (out, in, kh, kw),
ConvT (in, out, kh, kw), flatten order (C, H, W). Backends translate; they never lean on a
framework default (padding, eps, momentum, slope and init are all stated here).
"""

from dataclasses import dataclass, field

# Default init of DCGAN (Radford et al. 2016): weights N(0, 0.02), BN gamma N(1, 0.02), zero biases.
INIT_STD = 0.02
NORMAL_INIT = ("normal", INIT_STD)
# Spectral norm as torch.nn.utils.parametrizations.spectral_norm: eps of its normalisations and
# the power iterations run once when the layer is created (then one per training forward).
SN_EPS = 1e-12
SN_WARMUP_ITERATIONS = 15


@dataclass(frozen=True)
class Dense:
    name: str
    in_features: int
    out_features: int
    bias: bool = True
    sn: bool = False              # spectral normalisation of the weight
    init: tuple = NORMAL_INIT     # ("normal", std) or ("xavier_uniform", gain)


@dataclass(frozen=True)
class _Convolution:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int | tuple  # explicit: p on every side, or (before, after) on both spatial axes
    bias: bool = True
    sn: bool = False
    init: tuple = NORMAL_INIT

    @property
    def pads(self) -> tuple:
        """(before, after) padding of each spatial axis."""
        p = self.padding
        return (p, p) if isinstance(p, int) else tuple(p)


@dataclass(frozen=True)
class Conv(_Convolution):
    """Convolution: out = (in + before + after - k) // s + 1. TensorFlow's 'same' is
    padding (total // 2, total - total // 2) with total = max((out - 1) * s + k - in, 0)."""

    def out_size(self, size: int) -> int:
        return (size + sum(self.pads) - self.kernel) // self.stride + 1


@dataclass(frozen=True)
class ConvT(_Convolution):
    """Transposed convolution, the adjoint of Conv with the same padding: out = (in - 1) * s + k
    - before - after (PyTorch's padding p is (p, p); TensorFlow's 'same' is Conv's 'same')."""

    def out_size(self, size: int) -> int:
        return (size - 1) * self.stride + self.kernel - sum(self.pads)


@dataclass(frozen=True)
class BatchNorm:
    """BatchNorm per channel over (N, H, W) of an image batch, or per feature over N of a flat
    (N, F) batch (BatchNorm1d); PyTorch semantics: biased batch variance for the
    output, unbiased for the running variance, running = (1 - momentum) * running + momentum * batch."""

    name: str
    num_features: int
    eps: float = 1e-5
    momentum: float = 0.1
    init: tuple = NORMAL_INIT  # gamma = 1 + N(0, std); beta = 0


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout in training (kept units scaled by 1 / (1 - rate)), the identity otherwise.
    The mask is a hash of (step key, D call, layer name, NCHW element index): both backends drop
    the same units (oracle: ganbench.rng.dropout_keep_nchw)."""

    name: str
    rate: float


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
class Upsample:
    """Nearest-neighbour 2x upsampling."""


@dataclass(frozen=True)
class AvgPool:
    """2x2 average pooling, stride 2."""


@dataclass(frozen=True)
class GlobalPool:
    """(C, H, W) -> C by summing (SNGAN) or averaging (WGAN-GP) over H and W."""

    kind: str  # "sum" | "mean"


@dataclass(frozen=True)
class Residual:
    """out = main(x) + shortcut(x); an empty shortcut is the identity."""

    name: str
    main: tuple
    shortcut: tuple = ()


def leaf_layers(layers) -> list:
    """Every layer in order, residual blocks opened up (main path, then shortcut)."""
    out = []
    for layer in layers:
        if isinstance(layer, Residual):
            out += leaf_layers(layer.main) + leaf_layers(layer.shortcut)
        else:
            out.append(layer)
    return out


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: tuple
    layers: tuple

    def param_shapes(self) -> dict:
        """Canonical name -> shape of every trainable parameter, in layer order."""
        shapes = {}
        for layer in leaf_layers(self.layers):
            shapes.update(trainable_shapes(layer))
        return shapes

    def buffer_shapes(self) -> dict:
        """Canonical name -> shape of every non-trainable state tensor: BN running stats and the
        spectral-norm vectors u (left singular, length out) and v (right singular, length in*k*k)."""
        shapes = {}
        for layer in leaf_layers(self.layers):
            if isinstance(layer, BatchNorm):
                shapes[f"{layer.name}.running_mean"] = shapes[f"{layer.name}.running_var"] = (layer.num_features,)
            elif getattr(layer, "sn", False):
                rows, cols = sn_matrix_shape(layer)
                shapes[f"{layer.name}.sn_u"], shapes[f"{layer.name}.sn_v"] = (rows,), (cols,)
        return shapes


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

    @property
    def has_dropout(self) -> bool:
        return any(isinstance(layer, Dropout) for net in self.networks.values() for layer in leaf_layers(net.layers))


def sn_matrix_shape(layer) -> tuple:
    """The weight as the matrix whose spectral norm is taken: (out, in * k * k), rows = output
    units, as PyTorch's spectral_norm (dim 0 for Dense/Conv)."""
    if isinstance(layer, Dense):
        return layer.out_features, layer.in_features
    if isinstance(layer, Conv):
        return layer.out_channels, layer.in_channels * layer.kernel**2
    raise ValueError(f"spectral norm is defined for Dense and Conv layers, not {type(layer).__name__}")


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
