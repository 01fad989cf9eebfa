"""Strict reader for the IDX format used by MNIST and Fashion-MNIST (raw or gzip)."""

import gzip
import hashlib
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ganbench.errors import GanbenchError

# IDX magic: two zero bytes, dtype code 0x08 (uint8), number of dimensions.
MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801


def read_payload(path: Path) -> bytes:
    """The decompressed bytes of `path` (gzip when it ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GanbenchError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    except OSError as exc:
        raise GanbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None


def parse_idx(payload: bytes, path: Path, magic: int) -> np.ndarray:
    """Parse an IDX payload with the given magic into a uint8 array, checking its size exactly."""
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise GanbenchError(f"{path}: file too short for an IDX header ({len(payload)} bytes)")
    (found,) = struct.unpack(">I", payload[:4])
    if found != magic:
        raise GanbenchError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndim}I", payload[4:header])
    expected = header + math.prod(dims)  # Python ints: a forged size cannot overflow
    if len(payload) != expected:
        raise GanbenchError(
            f"{path}: wrong size, {len(payload)} bytes where dims {dims} need {expected}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def verify_sha256(payload: bytes, path: Path, expected: str | None) -> None:
    """Check the payload's sha256 when a canonical one is known."""
    if expected is None:
        return
    found = hashlib.sha256(payload).hexdigest()
    if found != expected:
        raise GanbenchError(f"{path}: checksum mismatch, sha256 {found[:16]}... expected {expected[:16]}...")
