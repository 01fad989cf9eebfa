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

PREFIX = "layers."


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(S.SN_EPS)


class SpectralNorm:
    """Mixin: weight / sigma(weight), as torch.nn.utils.parametrizations.spectral_norm with one
    power iteration per training forward. u and v are buffers (saved in checkpoints); the gradient
    flows through sigma via the weight, not through u and v."""

    def init_sn(self, layer) -> None:
        rows, cols = S.sn_matrix_shape(layer)
        self.register_buffer("sn_u", torch.zeros(rows))
        self.register_buffer("sn_v", torch.zeros(cols))

    def normalized_weight(self) -> torch.Tensor:
        matrix = self.weight.reshape(self.weight.shape[0], -1)
        u, v = self.sn_u, self.sn_v
        if self.training:
            with torch.no_grad():
                u = _normalize(matrix @ v)
                v = _normalize(matrix.T @ u)
            # rebound, never written in place: D runs on real, fake (and interpolates) before one
            # backward, and each forward's sigma must keep the u, v it was computed with
            self.sn_u, self.sn_v = u, v
        sigma = torch.dot(u, matrix @ v)
        return self.weight / sigma


class SNLinear(SpectralNorm, nn.Linear):
    def forward(self, x):
        return F.linear(x, self.normalized_weight(), self.bias)


class SNConv2d(SpectralNorm, nn.Conv2d):
    def forward(self, x):
        return self._conv_forward(x, self.normalized_weight(), self.bias)


def make_layer(layer) -> nn.Module:
    if isinstance(layer, S.Dense):
        module = (SNLinear if layer.sn else nn.Linear)(layer.in_features, layer.out_features, bias=layer.bias)
    elif isinstance(layer, S.Conv):
        module = (SNConv2d if layer.sn else nn.Conv2d)(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, bias=layer.bias
        )
    elif isinstance(layer, S.ConvT):
        module = nn.ConvTranspose2d(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, bias=layer.bias
        )
    elif isinstance(layer, S.BatchNorm):
        module = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    else:
        raise TypeError(f"torch backend cannot build {layer!r}")
    if getattr(layer, "sn", False):
        module.init_sn(layer)
    return module


def activation(layer: S.Act):
    if layer.kind == "relu":
        return F.relu
    if layer.kind == "leaky_relu":
        return partial(F.leaky_relu, negative_slope=layer.slope)
    if layer.kind == "tanh":
        return torch.tanh
    raise TypeError(f"torch backend cannot build {layer!r}")


def stateless(layer):
    """The function of a layer without tensors; NCHW throughout."""
    if isinstance(layer, S.Act):
        return activation(layer)
    if isinstance(layer, S.Reshape):
        return lambda x: x.reshape(-1, *layer.shape)
    if isinstance(layer, S.Flatten):
        return lambda x: x.flatten(1)
    if isinstance(layer, S.Upsample):
        return partial(F.interpolate, scale_factor=2, mode="nearest")
    if isinstance(layer, S.AvgPool):
        return partial(F.avg_pool2d, kernel_size=2)
    if isinstance(layer, S.GlobalPool):
        return partial(torch.sum if layer.kind == "sum" else torch.mean, dim=(2, 3))
    raise TypeError(f"torch backend cannot build {layer!r}")


def run(calls, x):
    for call in calls:
        x = call(x)
    return x


def residual(main, shortcut, x):
    return run(main, x) + run(shortcut, x)


class Network(nn.Module):
    def __init__(self, net: S.Network):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.calls = self._build(net.layers)

    def _build(self, layers) -> list:
        calls = []
        for layer in layers:
            if isinstance(layer, S.Residual):
                calls.append(partial(residual, self._build(layer.main), self._build(layer.shortcut)))
            elif hasattr(layer, "name"):
                self.layers[layer.name] = make_layer(layer)
                calls.append(self.layers[layer.name])
            else:
                calls.append(stateless(layer))
        return calls

    def forward(self, x):
        return run(self.calls, x)


def build_network(net: S.Network) -> Network:
    return Network(net)


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
