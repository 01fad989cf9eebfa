"""The one path from generator output to pixels, shared by both backends."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ganbench.fileio import atomic_write


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255] by round-half-to-even then clip (NHWC kept)."""
    scaled = np.rint((np.asarray(images, np.float64) + 1.0) * 127.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 NHWC -> one uint8 HxWxC image, tiles separated by `pad` black pixels."""
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.zeros((pad + nrows * (h + pad), pad + ncols * (w + pad), c), np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = image
    return grid


def save_png(image: np.ndarray, path) -> Path:
    """Write an HxWx{1,3} uint8 image as PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return atomic_write(path, buffer.getvalue())


def save_grid(images: np.ndarray, path, ncols: int | None = None) -> Path:
    """Generator output (float NHWC in [-1, 1]) or uint8 NHWC images -> a PNG grid, `ncols` wide."""
    return save_png(make_grid(images if images.dtype == np.uint8 else to_uint8(images), ncols), path)


def save_gif(frames: np.ndarray, path, milliseconds: int = 120) -> Path:
    """uint8 NHWC frames -> a looping GIF, written atomically."""
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=milliseconds, loop=0)
    return atomic_write(path, buffer.getvalue())
