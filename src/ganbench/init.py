"""Initial weights computed in numpy from (seed, network, parameter name).

Both backends load these arrays, so they start from identical weights. Every tensor has its own
keyed generator, so adding a layer never shifts the values of the others.
"""

import numpy as np

from ganbench.archs.spec import (
    SN_EPS,
    SN_WARMUP_ITERATIONS,
    BatchNorm,
    GANSpec,
    Network,
    sn_eps,
    sn_matrix_shape,
    spectrally_normalized,
    trainable_shapes,
)
from ganbench.rng import STREAM_INIT, keyed_rng, name_key


def _rng(seed: int, net: Network, name: str) -> np.random.Generator:
    return keyed_rng(seed, STREAM_INIT, name_key(f"{net.name}.{name}"))


def init_weight(layer, shape, rng) -> np.ndarray:
    """The layer's `init`: ("normal", std) or ("xavier_uniform", gain) with PyTorch's fans."""
    kind, scale = layer.init
    if kind == "normal":
        return scale * rng.standard_normal(shape)
    if kind == "xavier_uniform":
        receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        bound = scale * np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if kind == "orthogonal":
        return scale * orthogonal(shape, rng)
    raise ValueError(f"unknown init {layer.init!r} of layer {layer.name}")


def orthogonal(shape, rng) -> np.ndarray:
    """A (semi-)orthogonal matrix of shape[0] rows and prod(shape[1:]) columns, reshaped: the
    construction of torch.nn.init.orthogonal_ (QR of a Gaussian matrix, signs fixed by R's
    diagonal), from the keyed numpy generator."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    return (q.T if rows < cols else q).reshape(shape)


def normalize(x: np.ndarray, eps: float = SN_EPS) -> np.ndarray:
    return x / max(np.linalg.norm(x), eps)


def power_iteration(matrix: np.ndarray, u: np.ndarray, v: np.ndarray, iterations: int, eps: float = SN_EPS):
    """(u, v) after `iterations` steps of u = W v / |.|, v = W^T u / |.| (the order of
    torch.nn.utils.parametrizations.spectral_norm)."""
    for _ in range(iterations):
        u = normalize(matrix @ v, eps)
        v = normalize(matrix.T @ u, eps)
    return u, v


def init_sn_vectors(net: Network, layer, weight: np.ndarray, seed: int) -> dict:
    """u, v ~ normalised N(0, 1) keyed by name, then the warm-up power iterations on the float32
    weight, as torch's spectral_norm."""
    rows, cols = sn_matrix_shape(layer)
    names = f"{layer.name}.sn_u", f"{layer.name}.sn_v"
    eps = sn_eps(layer)
    u, v = (normalize(_rng(seed, net, name).standard_normal(n), eps) for name, n in zip(names, (rows, cols)))
    u, v = power_iteration(weight.astype(np.float32).astype(np.float64).reshape(rows, cols), u, v,
                           SN_WARMUP_ITERATIONS, eps)
    return dict(zip(names, (u, v)))


def init_network(net: Network, seed: int) -> dict:
    """Canonical name -> float32 array: weights by each layer's init, BN gamma 1 + N(0, std),
    biases and self-attention's gamma 0, running mean 0, running var 1, spectral-norm vectors
    warmed up on the weight."""
    params = {}
    for layer in net.leaves():
        for name, shape in trainable_shapes(layer).items():
            kind = name.rsplit(".", 1)[1]
            rng = _rng(seed, net, name)
            if kind in ("bias", "gamma"):
                params[name] = np.zeros(shape)
            elif isinstance(layer, BatchNorm):
                params[name] = 1.0 + layer.init[1] * rng.standard_normal(shape)
            else:
                params[name] = init_weight(layer, shape, rng)
        if isinstance(layer, BatchNorm):
            params[f"{layer.name}.running_mean"] = np.zeros(layer.num_features)
            params[f"{layer.name}.running_var"] = np.ones(layer.num_features)
        elif spectrally_normalized(layer):
            params.update(init_sn_vectors(net, layer, params[f"{layer.name}.weight"], seed))
    return {name: value.astype(np.float32) for name, value in params.items()}


def init_gan(spec: GANSpec, seed: int) -> dict:
    """{"G": {...}, "D": {...}} of canonical arrays."""
    return {key: init_network(net, seed) for key, net in spec.networks.items()}
