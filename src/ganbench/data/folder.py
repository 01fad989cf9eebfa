"""An image folder as a dataset: every PNG/JPEG under it (recursively, sorted by path),
centre-cropped to a square and resized to the model's size with Pillow (bicubic)."""

from pathlib import Path

import numpy as np

from ganbench.errors import GanbenchError

EXTENSIONS = (".png", ".jpg", ".jpeg")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")
MAX_PIXELS = 4096 * 4096  # per image: a forged header is refused before Pillow allocates its pixels


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GanbenchError(f"image folder {folder} not found")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise GanbenchError(f"image folder {folder} holds no .png, .jpg or .jpeg files")
    return files


def open_image(path: Path):
    """The decoded image; a file Pillow cannot decode, or one whose header claims more than
    MAX_PIXELS (checked before the pixels are allocated), is one error naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise GanbenchError(f"{path}: {image.width}x{image.height} pixels is more than ganbench reads "
                                    f"({MAX_PIXELS} at most)")
            image.load()
            return image
    except GanbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GanbenchError(f"{path}: unreadable image ({reason})") from None


def square_resize(image, size: int, mode: str) -> np.ndarray:
    """Centre crop to the shorter side, resize to size x size, as uint8 [size, size, C]."""
    from PIL import Image

    image = image.convert(mode)
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    # crop first: resize(box=...) would let the bicubic filter read pixels outside the crop
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def read_folder(folder, size: int, channels: int = 0) -> np.ndarray:
    """uint8 [N, size, size, C]; channels 0: 1 when every image is grayscale, else 3."""
    images = [open_image(p) for p in image_files(Path(folder))]
    if channels == 0:
        channels = 1 if all(image.mode in GRAYSCALE_MODES for image in images) else 3
    mode = "L" if channels == 1 else "RGB"
    return np.stack([square_resize(image, size, mode) for image in images])
