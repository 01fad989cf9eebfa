"""Randomness keyed on (seed, stream, indices), drawn with numpy.

Both backends consume the same numbers, and resuming needs only the step counter:
no generator state is ever saved.
"""

import operator
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
STREAM_FAKE_LABELS = 9  # class labels of the fakes (conditional models)
STREAM_FLIP = 10        # horizontal flips of the real images
STREAM_TRUNCATION = 11  # redraws of truncated noise elements (sampling)
STREAM_STANDING = 12    # noise of the standing-statistics batches (sampling)
STREAM_AUGMENT = 13     # DiffAugment's draws (ganbench.augment)
STREAM_DATA_LIMIT = 14  # the subset of --data-limit
STREAM_CONSISTENCY = 15  # bCR's translations (--cr)


def keyed_rng(seed: int, stream: int, *indices: int) -> np.random.Generator:
    """A fresh PCG64 generator whose state is a pure function of its key."""
    return np.random.default_rng([int(seed), int(stream), *map(int, indices)])


def name_key(name: str) -> int:
    """A stable integer for a parameter name (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))


def normal_noise(seed: int, stream: int, shape, *indices: int) -> np.ndarray:
    """float32 N(0, 1) noise of `shape` for the given key."""
    return keyed_rng(seed, stream, *indices).standard_normal(shape, dtype=np.float32)


# Dropout masks: a counter-based hash instead of a generator, so that each backend computes them
# on its own device, identically, from (step key, D call, layer name, NCHW element index).
STREAM_DROPOUT = 8
MASK32 = 0xFFFFFFFF


def mix32(x, shift_right=operator.rshift, wraps: bool = False):
    """A 32-bit integer hash of x in [0, 2^32), written with ^, *, & and a right shift: Python
    ints and numpy, torch and tf int64 tensors (tf: pass tf.bitwise.right_shift) compute it
    bit-identically. Multipliers below 2^31 keep every product below 2^63. wraps: x is a 32-bit
    tensor (with a logical right shift), whose products keep their low 32 bits by themselves: the
    same bits at half the memory traffic (the backends' dropout masks)."""
    low32 = (lambda v: v) if wraps else (lambda v: v & MASK32)
    x = low32((x ^ shift_right(x, 16)) * 0x7FEB352D)
    x = low32((x ^ shift_right(x, 15)) * 0x2C1B3C6D)
    return x ^ shift_right(x, 16)


def dropout_step_key(seed: int, step: int) -> int:
    """The training step's dropout key, in [0, 2^32)."""
    return int(keyed_rng(seed, STREAM_DROPOUT, step).integers(2**32))


def dropout_threshold(rate: float) -> int:
    """A unit is kept where its 32-bit hash is at least this."""
    return round(rate * 2**32)


def dropout_keep_nchw(step_key: int, call: int, layer_name: str, shape, rate: float) -> np.ndarray:
    """The numpy oracle of a dropout layer's keep mask for one D call on an NCHW batch."""
    key = mix32(mix32(step_key ^ call) ^ name_key(layer_name))
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return mix32(index ^ key) >= dropout_threshold(rate)
