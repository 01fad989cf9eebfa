"""Initial weights computed in numpy from (seed, network, parameter name).

Both backends load these arrays, so they start from identical weights. Every tensor has its own
keyed generator, so adding a layer never shifts the values of the others.
"""

import numpy as np

from ganbench.archs.spec import INIT_STD, BatchNorm, GANSpec, Network
from ganbench.rng import STREAM_INIT, keyed_rng, name_key


def init_network(net: Network, seed: int) -> dict:
    """Canonical name -> float32 array: weights N(0, 0.02), BN gamma N(1, 0.02), biases 0,
    running mean 0, running var 1."""
    bn_names = {layer.name for layer in net.layers if isinstance(layer, BatchNorm)}
    params = {}
    for name, shape in net.param_shapes().items():
        layer, kind = name.rsplit(".", 1)
        rng = keyed_rng(seed, STREAM_INIT, name_key(f"{net.name}.{name}"))
        if kind == "bias":
            value = np.zeros(shape)
        elif layer in bn_names:
            value = 1.0 + INIT_STD * rng.standard_normal(shape)
        else:
            value = INIT_STD * rng.standard_normal(shape)
        params[name] = value.astype(np.float32)
    for name, shape in net.buffer_shapes().items():
        params[name] = (np.zeros if name.endswith("running_mean") else np.ones)(shape, np.float32)
    return params


def init_gan(spec: GANSpec, seed: int) -> dict:
    """{"G": {...}, "D": {...}} of canonical arrays."""
    return {key: init_network(net, seed) for key, net in spec.networks.items()}
