"""Build a torch network from a spec; load and export its tensors in the canonical layout."""

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ganbench.archs import spec as S


def make_layer(layer) -> nn.Module:
    if isinstance(layer, S.Dense):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if isinstance(layer, S.Conv):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, bias=layer.bias)
    if isinstance(layer, S.ConvT):
        return nn.ConvTranspose2d(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, bias=layer.bias
        )
    if isinstance(layer, S.BatchNorm):
        return nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, S.Act):
        if layer.kind == "relu":
            return nn.ReLU()
        if layer.kind == "leaky_relu":
            return nn.LeakyReLU(layer.slope)
        if layer.kind == "tanh":
            return nn.Tanh()
    if isinstance(layer, S.Reshape):
        return nn.Unflatten(1, layer.shape)
    if isinstance(layer, S.Flatten):
        return nn.Flatten()
    raise TypeError(f"torch backend cannot build {layer!r}")


def build_network(net: S.Network) -> nn.Sequential:
    """nn.Sequential whose state_dict keys are the spec's canonical names."""
    modules = OrderedDict()
    for i, layer in enumerate(net.layers):
        modules[getattr(layer, "name", f"_{i}")] = make_layer(layer)
    return nn.Sequential(modules)


def canonical_names(net: S.Network) -> list:
    return [*net.param_shapes(), *net.buffer_shapes()]


def load_canonical(module: nn.Module, net: S.Network, arrays: dict) -> None:
    """Copy canonical float arrays into the module's parameters and BN buffers."""
    current = module.state_dict()
    with torch.no_grad():
        for name in canonical_names(net):
            target = current[name]
            value = np.asarray(arrays[name])
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{net.name}.{name}: shape {value.shape}, expected {tuple(target.shape)}")
            target.copy_(torch.from_numpy(value))


def export_canonical(module: nn.Module, net: S.Network) -> dict:
    current = module.state_dict()
    return {name: current[name].detach().cpu().numpy().copy() for name in canonical_names(net)}
