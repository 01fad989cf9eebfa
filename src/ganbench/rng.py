"""Randomness keyed on (seed, stream, indices), drawn with numpy.

Both backends consume the same numbers, and resuming needs only the step counter:
no generator state is ever saved.
"""

import zlib

import numpy as np

# Stream ids: fixed forever, since they key saved runs.
STREAM_DATA_ORDER = 1
STREAM_NOISE_D = 2
STREAM_NOISE_G = 3
STREAM_FIXED_NOISE = 4
STREAM_SAMPLE = 5
STREAM_INIT = 6
STREAM_GP_ALPHA = 7


def keyed_rng(seed: int, stream: int, *indices: int) -> np.random.Generator:
    """A fresh PCG64 generator whose state is a pure function of its key."""
    return np.random.default_rng([int(seed), int(stream), *map(int, indices)])


def name_key(name: str) -> int:
    """A stable integer for a parameter name (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))


def normal_noise(seed: int, stream: int, shape, *indices: int) -> np.ndarray:
    """float32 N(0, 1) noise of `shape` for the given key."""
    return keyed_rng(seed, stream, *indices).standard_normal(shape, dtype=np.float32)
