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
    init: tuple = NORMAL_INIT     # ("normal", std), ("xavier_uniform", gain) or ("orthogonal", gain)
    sn_eps: float | None = None   # eps of the spectral norm's normalisations; None: SN_EPS


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
    sn_eps: float | None = None

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
    no_affine: bool = False    # no gamma and beta (conditional BN supplies its own)


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
class MaxPool:
    """2x2 max pooling, stride 2."""


@dataclass(frozen=True)
class Embedding:
    """A class embedding: the rows of weight [num_classes, dim] that the labels pick. Spectral norm
    (when sn) treats the weight as a num_classes x dim matrix, as torch's spectral_norm does."""

    name: str
    num_classes: int
    dim: int
    sn: bool = False
    init: tuple = NORMAL_INIT
    sn_eps: float | None = None


@dataclass(frozen=True)
class CondBatchNorm:
    """BigGAN's class-conditional BatchNorm: BatchNorm without affine, then
    x * (1 + gain(c)) + bias(c), where gain and bias are bias-free Dense layers of the context's
    conditioning vector c = context[cond] [B, cond_dim] (Brock et al. 2019, Appendix B)."""

    name: str
    num_features: int
    cond: str        # context key, e.g. "cond1": the shared class embedding and the block's z chunk
    cond_dim: int
    eps: float = 1e-5
    momentum: float = 0.1
    sn: bool = False
    init: tuple = NORMAL_INIT
    sn_eps: float | None = None

    def parts(self) -> tuple:
        dense = lambda suffix: Dense(f"{self.name}_{suffix}", self.cond_dim, self.num_features, bias=False,  # noqa: E731
                                     sn=self.sn, init=self.init, sn_eps=self.sn_eps)
        return (BatchNorm(self.name, self.num_features, self.eps, self.momentum, no_affine=True),
                dense("gain"), dense("bias"))


@dataclass(frozen=True)
class SelfAttention:
    """SAGAN's self-attention (Zhang et al. 2019) as BigGAN uses it: 1x1 convolutions theta
    (C -> C/8), phi (C -> C/8) and g (C -> C/2), phi and g max-pooled 2x2; attention
    softmax(theta^T phi) over the pooled positions; out = x + gamma * o(g attention^T) with a 1x1
    conv o (C/2 -> C) and a learnt scalar gamma that starts at 0. No biases."""

    name: str
    channels: int
    sn: bool = False
    init: tuple = NORMAL_INIT
    sn_eps: float | None = None

    def parts(self) -> tuple:
        c = self.channels
        conv = lambda suffix, cin, cout: Conv(f"{self.name}_{suffix}", cin, cout, 1, 1, 0, bias=False,  # noqa: E731
                                              sn=self.sn, init=self.init, sn_eps=self.sn_eps)
        return (conv("theta", c, max(1, c // 8)), conv("phi", c, max(1, c // 8)), conv("g", c, max(1, c // 2)),
                conv("o", max(1, c // 2), c))


@dataclass(frozen=True)
class Projection(Embedding):
    """The projection discriminator's class term (Miyato & Koyama 2018): sum(Embedding(y) * h)
    over features, [B, dim] -> [B, 1]; reads the context's "labels"."""


@dataclass(frozen=True)
class HierarchicalZ:
    """A generator's prelude (BigGAN): z [B, z_dim] splits into `chunks` equal chunks; chunk 0 is
    the input of the first layer, and chunk i (i >= 1) joins the class embedding of the labels as
    the context's "cond<i>" = concat(embedding(y), chunk i)."""

    chunks: int
    embedding: Embedding


@dataclass(frozen=True)
class Residual:
    """out = main(x) + shortcut(x); an empty shortcut is the identity."""

    name: str
    main: tuple
    shortcut: tuple = ()


def leaf_layers(layers) -> list:
    """Every layer in order, residual blocks opened up (main path, then shortcut), composite
    layers (conditional BN, self-attention) followed by their parts."""
    out = []
    for layer in layers:
        if isinstance(layer, Residual):
            out += leaf_layers(layer.main) + leaf_layers(layer.shortcut)
        else:
            out += [layer, *getattr(layer, "parts", tuple)()]
    return out


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: tuple
    layers: tuple
    prelude: HierarchicalZ | None = None  # builds the forward's context from z and the labels

    def leaves(self) -> list:
        """Every layer with tensors or not, the prelude's embedding first."""
        return ([self.prelude.embedding] if self.prelude else []) + leaf_layers(self.layers)

    def param_shapes(self) -> dict:
        """Canonical name -> shape of every trainable parameter, in layer order."""
        shapes = {}
        for layer in self.leaves():
            shapes.update(trainable_shapes(layer))
        return shapes

    def buffer_shapes(self) -> dict:
        """Canonical name -> shape of every non-trainable state tensor: BN running stats and the
        spectral-norm vectors u (left singular, length out) and v (right singular, length in*k*k)."""
        shapes = {}
        for layer in self.leaves():
            if isinstance(layer, BatchNorm):
                shapes[f"{layer.name}.running_mean"] = shapes[f"{layer.name}.running_var"] = (layer.num_features,)
            elif spectrally_normalized(layer):
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
    num_classes: int = 0  # class-conditional when > 0: G and D read the labels

    @property
    def networks(self) -> dict:
        return {"G": self.generator, "D": self.discriminator}

    @property
    def has_dropout(self) -> bool:
        return any(isinstance(layer, Dropout) for net in self.networks.values() for layer in leaf_layers(net.layers))

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


def sn_matrix_shape(layer) -> tuple:
    """The weight as the matrix whose spectral norm is taken: (out, in * k * k), rows = output
    units, as PyTorch's spectral_norm (dim 0 for Dense/Conv)."""
    if isinstance(layer, Dense):
        return layer.out_features, layer.in_features
    if isinstance(layer, Conv):
        return layer.out_channels, layer.in_channels * layer.kernel**2
    if isinstance(layer, Embedding):  # a Projection too
        return layer.num_classes, layer.dim
    raise ValueError(f"spectral norm is defined for Dense, Conv and embeddings, not {type(layer).__name__}")


def spectrally_normalized(layer) -> bool:
    """The layer's own weight is spectrally normalised (a composite's `sn` passes to its parts)."""
    return getattr(layer, "sn", False) and not hasattr(layer, "parts")


def sn_eps(layer) -> float:
    return SN_EPS if layer.sn_eps is None else layer.sn_eps


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
        if layer.no_affine:
            return {}
        return {f"{layer.name}.weight": (layer.num_features,), f"{layer.name}.bias": (layer.num_features,)}
    elif isinstance(layer, Embedding):  # a Projection too
        return {f"{layer.name}.weight": (layer.num_classes, layer.dim)}
    elif isinstance(layer, SelfAttention):
        return {f"{layer.name}.gamma": (1,)}
    else:
        return {}
    if layer.bias:
        shapes[f"{layer.name}.bias"] = (bias,)
    return shapes
