"""Build a torch network from a spec; load and export its tensors in the canonical layout.

Every parametric layer is registered flat under its spec name (`layers.<name>`), whatever
residual block it sits in, so canonical names map one to one onto state_dict keys.
"""

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbench.archs import spec as S
from ganbench.rng import MASK32, dropout_threshold, mix32, name_key

PREFIX = "layers."


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x / x.norm().clamp_min(eps)


class SpectralNorm:
    """Mixin: weight / sigma(weight), as torch.nn.utils.parametrizations.spectral_norm with one
    power iteration per training forward. u and v are buffers (saved in checkpoints); the gradient
    flows through sigma via the weight, not through u and v."""

    def init_sn(self, layer) -> None:
        rows, cols = S.sn_matrix_shape(layer)
        self.register_buffer("sn_u", torch.zeros(rows))
        self.register_buffer("sn_v", torch.zeros(cols))
        self.sn_eps = S.sn_eps(layer)

    def normalized_weight(self) -> torch.Tensor:
        matrix = self.weight.reshape(self.weight.shape[0], -1)
        u, v = self.sn_u, self.sn_v
        if self.training:
            with torch.no_grad():
                u = _normalize(matrix @ v, self.sn_eps)
                v = _normalize(matrix.T @ u, self.sn_eps)
            # rebound, never written in place: D runs on real, fake (and interpolates) before one
            # backward, and each forward's sigma must keep the u, v it was computed with
            self.sn_u, self.sn_v = u, v
        sigma = torch.dot(u, matrix @ v)
        return self.weight / sigma


class LowPrecision:
    """Mixin of the layers that compute in the run's precision (ganbench.precision): input, weight
    and bias cast to `compute_dtype`, the result left in it. None: as they are."""

    compute_dtype = None

    def compute(self, op, x, weight, bias):
        if self.compute_dtype is None:
            return op(x, weight, bias)
        low = self.compute_dtype
        return op(x.to(low), weight.to(low), None if bias is None else bias.to(low))


def widened(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """x in the dtype of `like` (a weight or a network's input): where the precision rule leaves
    low-precision results (ganbench.precision)."""
    return x.to(like.dtype)


class Linear(LowPrecision, nn.Linear):
    def forward(self, x):
        return self.compute(F.linear, x, self.weight, self.bias)


class SNLinear(SpectralNorm, Linear):
    def forward(self, x):
        return self.compute(F.linear, x, self.normalized_weight(), self.bias)


def pad(x: torch.Tensor, widths: tuple) -> torch.Tensor:
    """F.pad by `widths` (negative widths crop), or x itself when there are none."""
    return F.pad(x, widths) if widths else x


class Conv2d(LowPrecision, nn.Conv2d):
    """Conv2d with asymmetric padding (TensorFlow's 'same' at stride 2) as an explicit F.pad."""

    extra = ()  # set by make_layer: extra_padding(layer)

    def forward(self, x):
        return self.compute(self._conv_forward, pad(x, self.extra), self.weight, self.bias)


class ConvTranspose2d(LowPrecision, nn.ConvTranspose2d):
    """ConvTranspose2d cropping asymmetrically, the adjoint of Conv2d's asymmetric padding."""

    extra = ()

    def forward(self, x):
        return pad(self.compute(self._transposed, x, self.weight, self.bias), self.extra)

    def _transposed(self, x, weight, bias):
        if x.shape[2:] == (1, 1) and self.padding == (0, 0):
            return conv_transpose_of_a_pixel(x, weight, bias)
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
                                  self.dilation)


def conv_transpose_of_a_pixel(x, weight, bias):
    """F.conv_transpose2d of a 1x1 input without padding (DCGAN's first G layer): output pixel
    (i, j) is x @ weight[:, :, i, j], so the whole layer is one matmul. oneDNN's kernel for this
    shape ran at under a tenth of the matmul rate, forward and backward."""
    n, (cin, cout, kh, kw) = x.shape[0], weight.shape
    out = x.reshape(n, cin) @ weight.permute(0, 2, 3, 1).reshape(cin, kh * kw * cout)   # [n, kh*kw*cout]
    out = out.reshape(n, kh, kw, cout).permute(0, 3, 1, 2)                            # channels_last strides
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class SNConv2d(SpectralNorm, Conv2d):
    def forward(self, x):
        return self.compute(self._conv_forward, pad(x, self.extra), self.normalized_weight(), self.bias)


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm2d on (N, C, H, W), BatchNorm1d on (N, F): F.batch_norm normalises per dim 1.
    sync_replicas > 1 (set by the GAN for its training steps only): training forwards normalise
    over the replicas' global batch (distributed.synchronised_batch_norm)."""

    sync_replicas = 1

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"BatchNorm expects (N, F) or (N, C, H, W), got shape {tuple(x.shape)}")

    def forward(self, x):
        """A low-precision x is normalised in its own dtype with float32 statistics (PyTorch's
        mixed-dtype kernel accumulates in float32); the synchronised form works in float32."""
        if self.training and self.sync_replicas > 1:
            from ganbench.backends.torch.distributed import synchronised_batch_norm

            self._check_input_dim(x)
            return synchronised_batch_norm(self, widened(x, self.running_mean), self.sync_replicas).to(x.dtype)
        return super().forward(x)


class EmbeddingTable(nn.Module):
    """The weight [num_classes, dim] of a class embedding; a projection or a prelude picks its rows."""

    def __init__(self, layer):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(layer.num_classes, layer.dim))

    def table(self) -> torch.Tensor:
        return self.weight


class SNEmbeddingTable(SpectralNorm, EmbeddingTable):
    def table(self) -> torch.Tensor:
        return self.normalized_weight()


class ProjectionCall:
    """sum(embedding(labels) * h) over features: [B, dim] -> [B, 1] (the context's labels)."""

    reads_context = True

    def __init__(self, embedding: EmbeddingTable):
        self.embedding = embedding

    def __call__(self, h, context):
        table = self.embedding.table()
        return (F.embedding(context["labels"], table) * widened(h, table)).sum(1, keepdim=True)


class CondBatchNormCall:
    """BatchNorm without affine, then x * (1 + gain(c)) + bias(c), c = context[cond]."""

    reads_context = True

    def __init__(self, bn: nn.Module, gain: nn.Module, bias: nn.Module, cond: str):
        self.bn, self.gain, self.bias, self.cond = bn, gain, bias, cond

    def __call__(self, x, context):
        c = context[self.cond]
        return self.bn(x) * (1.0 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class AttentionGamma(nn.Module):
    """Self-attention's learnt scale of its output (spec: `<name>.gamma`, starting at 0)."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))


class SelfAttentionCall:
    """SAGAN's self-attention, NCHW: see archs.spec.SelfAttention."""

    def __init__(self, theta, phi, g, o, gamma: AttentionGamma):
        self.theta, self.phi, self.g, self.o, self.gamma = theta, phi, g, o, gamma

    def __call__(self, x):
        """The products, the softmax and the sum with x in gamma's dtype (float32 under bf16/fp16)."""
        b, _, h, w = x.shape
        wide = partial(widened, like=self.gamma.gamma)
        theta = wide(self.theta(x)).flatten(2)                          # [B, C/8, HW]
        phi = wide(F.max_pool2d(self.phi(x), 2)).flatten(2)             # [B, C/8, HW/4]
        attention = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [B, HW, HW/4]
        g = wide(F.max_pool2d(self.g(x), 2)).flatten(2)                 # [B, C/2, HW/4]
        out = (g @ attention.transpose(1, 2)).reshape(b, -1, h, w)      # [B, C/2, H, W]
        return wide(x) + self.gamma.gamma * wide(self.o(out))


class KeyedDropout(nn.Module):
    """Dropout whose mask hashes (key of the D call, layer name, element index): see rng.mix32.
    Reads the forward's context: "call_key", an int64 scalar tensor."""

    reads_context = True

    def __init__(self, layer: S.Dropout):
        super().__init__()
        self.layer_key, self.threshold = name_key(layer.name), dropout_threshold(layer.rate)
        self.scale = 1.0 / (1.0 - layer.rate)

    def forward(self, x, context):
        if not self.training:
            return x
        call_key = context.get("call_key")
        if call_key is None:
            raise ValueError("dropout in training needs the step's dropout key")
        keep = self.keep_mask(mix32(call_key ^ self.layer_key), x.shape, context.get("shard", 0))
        return x * (keep.to(x.dtype) * self.scale)

    def keep_mask(self, key, shape, shard: int):
        """keep[b, c, h, w]: the hash of the element's index in the global batch (a replica's rows
        start at shard * numel), xor the layer's call key, at least the threshold."""
        numel = int(np.prod(shape))
        wide = (shard + 1) * numel > 2**31  # indices beyond 31 bits: the int64 form
        index = torch.arange(shard * numel, (shard + 1) * numel, dtype=torch.int64 if wide else torch.int32,
                             device=key.device).reshape(shape)
        if wide:
            return mix32(index ^ key) >= self.threshold
        # int32 holding uint32 bits (rng.mix32's 32-bit form; torch's uint32 has no shifts or
        # comparisons on the CPU): the TF tutorial's step 1.12x faster than with the int64 form.
        # Flipping the sign bit turns the unsigned comparison into a signed one.
        hashed = mix32(index ^ (((key + 2**31) & MASK32) - 2**31).to(torch.int32), logical_shift, wraps=True)
        return (hashed ^ -2**31) >= self.threshold - 2**31


def logical_shift(x, bits: int):
    """x >> bits on int32 as if unsigned: the sign bit shifted in is masked off."""
    return (x >> bits) & ((1 << (32 - bits)) - 1)


def make_layer(layer) -> nn.Module:
    if isinstance(layer, S.Dropout):
        return KeyedDropout(layer)
    if isinstance(layer, S.Dense):
        module = (SNLinear if layer.sn else Linear)(layer.in_features, layer.out_features, bias=layer.bias)
    elif isinstance(layer, S.Conv):
        module = (SNConv2d if layer.sn else Conv2d)(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, min(layer.pads), bias=layer.bias
        )
    elif isinstance(layer, S.ConvT):
        module = ConvTranspose2d(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, min(layer.pads), bias=layer.bias
        )
    elif isinstance(layer, S.BatchNorm):
        module = BatchNorm(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=not layer.no_affine)
    elif isinstance(layer, S.Embedding):  # a Projection too
        module = (SNEmbeddingTable if layer.sn else EmbeddingTable)(layer)
    elif isinstance(layer, S.SelfAttention):
        module = AttentionGamma()
    else:
        raise TypeError(f"torch backend cannot build {layer!r}")
    if S.spectrally_normalized(layer):
        module.init_sn(layer)
    if isinstance(layer, (S.Conv, S.ConvT)):
        module.extra = extra_padding(layer)
    return module


def extra_padding(layer) -> tuple:
    """F.pad widths (left, right, top, bottom) on top of PyTorch's symmetric min(before, after):
    zeros added before a Conv, negative (a crop) after a ConvT."""
    before, after = layer.pads
    low = min(before, after)
    sign = 1 if isinstance(layer, S.Conv) else -1
    return (sign * (before - low), sign * (after - low)) * 2 if before != after else ()


def activation(layer: S.Act, in_place: bool = False):
    """in_place: overwrite the input, a fresh result of the layer before (one tensor less to
    allocate and fill); autograd then differentiates through the output."""
    if layer.kind == "relu":
        return partial(F.relu, inplace=in_place)
    if layer.kind == "leaky_relu":
        return partial(F.leaky_relu, negative_slope=layer.slope, inplace=in_place)
    if layer.kind == "tanh":
        return torch.tanh
    raise TypeError(f"torch backend cannot build {layer!r}")


def stateless(layer):
    """The function of a layer without tensors; NCHW throughout."""
    if isinstance(layer, S.Act):
        return activation(layer)
    if isinstance(layer, S.Reshape):
        return lambda x: x.reshape(x.shape[0], *layer.shape)  # channels known to ONNX's shape inference
    if isinstance(layer, S.Flatten):
        return lambda x: x.flatten(1)
    if isinstance(layer, S.Upsample):
        return partial(F.interpolate, scale_factor=2, mode="nearest")
    if isinstance(layer, S.AvgPool):
        return partial(F.avg_pool2d, kernel_size=2)
    if isinstance(layer, S.MaxPool):
        return partial(F.max_pool2d, kernel_size=2)
    if isinstance(layer, S.GlobalPool):  # accumulated and returned in float32 at least
        reduce = torch.sum if layer.kind == "sum" else torch.mean
        return lambda x: reduce(x, dim=(2, 3), dtype=torch.promote_types(x.dtype, torch.float32))
    raise TypeError(f"torch backend cannot build {layer!r}")


def run(calls, x, context: dict):
    """The calls in turn; those that declare `reads_context` also receive the forward's context."""
    for call in calls:
        x = call(x, context) if getattr(call, "reads_context", False) else call(x)
    return x


class ResidualCall:
    """main(x) + shortcut(x); both paths see the forward's context."""

    reads_context = True

    def __init__(self, main: list, shortcut: list):
        self.main, self.shortcut = main, shortcut

    def __call__(self, x, context):
        return run(self.main, x, context) + run(self.shortcut, x, context)


# layers whose output is always a tensor of their own, which an activation after them may overwrite
FRESH_RESULT = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.modules.batchnorm._BatchNorm)


class Network(nn.Module):
    def __init__(self, net: S.Network):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.prelude = net.prelude
        if net.prelude:
            self._add(net.prelude.embedding)
        self.calls = self._build(net.layers)

    def _add(self, layer) -> nn.Module:
        self.layers[layer.name] = make_layer(layer)
        return self.layers[layer.name]

    def _build(self, layers) -> list:
        calls = []
        for layer in layers:
            if isinstance(layer, S.Residual):
                calls.append(ResidualCall(self._build(layer.main), self._build(layer.shortcut)))
            elif isinstance(layer, S.CondBatchNorm):
                calls.append(CondBatchNormCall(*(self._add(part) for part in layer.parts()), layer.cond))
            elif isinstance(layer, S.SelfAttention):
                gamma = self._add(layer)
                calls.append(SelfAttentionCall(*(self._add(part) for part in layer.parts()), gamma))
            elif isinstance(layer, S.Projection):
                calls.append(ProjectionCall(self._add(layer)))
            elif hasattr(layer, "name"):
                calls.append(self._add(layer))
            elif isinstance(layer, S.Act) and calls and isinstance(calls[-1], FRESH_RESULT):
                calls.append(activation(layer, in_place=True))  # its input is no one else's
            else:
                calls.append(stateless(layer))
        return calls

    def forward(self, x, context: dict | None = None):
        """context: what this forward's layers may read beside x, built once per call by the GAN
        ("call_key": int64 scalar tensor keying the dropout masks, in training; "labels": int64
        [B] class labels) and completed by the prelude ("cond<i>")."""
        context = dict(context or {})
        out = run(self.calls, self._hierarchical_z(x, context) if self.prelude else x, context)
        return widened(out, x)  # low-precision results flow up to here (ganbench.precision)

    def _hierarchical_z(self, z, context: dict):
        """Chunk 0 of z; puts cond<i> = concat(embedding(labels), chunk i) into the context."""
        chunks = z.split(z.shape[1] // self.prelude.chunks, dim=1)
        embedded = F.embedding(context["labels"], self.layers[self.prelude.embedding.name].table())
        for i in range(1, self.prelude.chunks):
            context[f"cond{i}"] = torch.cat([embedded, chunks[i]], dim=1)
        return chunks[0]


def build_network(net: S.Network) -> Network:
    return Network(net)


def set_compute_dtype(module: nn.Module, dtype: torch.dtype | None) -> None:
    """The precision its convolutions and dense layers compute in (None: the weights' own)."""
    for layer in module.modules():
        if isinstance(layer, LowPrecision):
            layer.compute_dtype = dtype


def canonical_names(net: S.Network) -> list:
    return [*net.param_shapes(), *net.buffer_shapes()]


def load_canonical(module: nn.Module, net: S.Network, arrays: dict) -> None:
    """Copy canonical float arrays into the module's parameters and buffers."""
    current = module.state_dict()
    with torch.no_grad():
        for name in canonical_names(net):
            target = current[PREFIX + name]
            value = np.asarray(arrays[name])
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{net.name}.{name}: shape {value.shape}, expected {tuple(target.shape)}")
            target.copy_(torch.from_numpy(value))


def export_canonical(module: nn.Module, net: S.Network) -> dict:
    current = module.state_dict()
    return {name: current[PREFIX + name].detach().cpu().numpy().copy() for name in canonical_names(net)}
