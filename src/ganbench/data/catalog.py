"""How each dataset's files are found, checked and read into numpy (the datasets themselves are
declared in data/datasets.py, whose names this module re-exports), downloading what is missing.

Readers return uint8 images in NHWC layout and int64 labels; nothing here imports a framework.
"""

import sys
from pathlib import Path

import numpy as np

from ganbench.data import download as downloads
from ganbench.data import idx
from ganbench.data.batches import pad_to
from ganbench.data.datasets import (
    DATASETS, DEBIAN_FASHION_MNIST, EMBEDDED_MNIST, FASHION_MNIST, FOLDER, GAN_SPLITS, LABELLED, MNIST, IdxDataset,
    IdxFile, cache_dir, data_root, default_image_size, downloads_allowed, get_dataset)
from ganbench.errors import DatasetMissing, GanbenchError

__all__ = [  # the datasets' declarations, re-exported, and the readers
    "DATASETS", "DEBIAN_FASHION_MNIST", "EMBEDDED_MNIST", "FASHION_MNIST", "FOLDER", "GAN_SPLITS", "LABELLED", "MNIST",
    "IdxDataset", "IdxFile", "cache_dir", "data_root", "default_image_size", "downloads_allowed", "get_dataset",
    "fit_to_size", "resize_bilinear", "search_dirs", "find_file", "load", "read_split", "download_missing", "gan_data"]


def fit_to_size(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC to size x size: zero-pad images up to 4 pixels smaller (MNIST 28 -> 32), resize
    much smaller ones bilinearly (MNIST 28 -> 64, as torchvision's Resize in pytorch/examples
    dcgan), box-downsample larger ones by a whole factor (STL-10 96 -> 48 averages 2x2 blocks,
    rounding half up)."""
    n, h, w, c = images.shape
    if h <= size and w <= size:
        return pad_to(images, size) if size - min(h, w) <= 4 else resize_bilinear(images, size)
    if h != w or h % size:
        raise GanbenchError(f"images are {h}x{w}: cannot downsample them to {size}x{size} by a whole factor")
    f = h // size
    total = images.reshape(n, size, f, size, f, c).sum(axis=(2, 4), dtype=np.uint32)
    return ((total + f * f // 2) // (f * f)).astype(np.uint8)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([
        np.asarray(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).resize(
            (size, size), Image.Resampling.BILINEAR)).reshape(size, size, image.shape[-1])
        for image in images
    ])


def search_dirs(dataset: IdxDataset, root: Path) -> list[Path]:
    return [root / dataset.name, *dataset.extra_dirs]


def find_file(dataset: IdxDataset, root: Path, file: IdxFile) -> Path:
    """The first existing `<dir>/<name>.gz` or `<dir>/<name>`, searching the dataset's dirs in order."""
    dirs = search_dirs(dataset, root)
    for d in dirs:
        for candidate in (d / f"{file.name}.gz", d / file.name):
            if candidate.is_file():
                return candidate
    raise DatasetMissing(f"{dataset.name}: {file.name}.gz not found in {' or '.join(str(d) for d in dirs)}")


def load(name: str, split: str = "train", data_dir=None, fit=None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, H, W, C], labels int64 [N]) of a split, every file checked; `fit`, if
    given, maps uint8 image batches to their final form (applied while reading, where a reader
    reads in chunks). A dataset missing from the data root (and its extra dirs) is downloaded
    there first, unless downloads are off."""
    dataset = get_dataset(name)
    root = data_root(data_dir)
    try:
        return read_split(dataset, root, split, fit)
    except DatasetMissing as missing:
        download_missing(dataset, root, str(missing))
    return read_split(dataset, root, split, fit)


def read_split(dataset, root: Path, split: str, fit=None) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(dataset, IdxDataset):
        return dataset.read(root, split, fit)
    if split not in ("train", "test"):
        raise GanbenchError(f"unknown split {split!r} (choose from train, test)")
    arrays, paths = {}, {}
    for kind, magic in (("images", idx.MAGIC_IMAGES), ("labels", idx.MAGIC_LABELS)):
        file = dataset.files[(split, kind)]
        path = paths[kind] = find_file(dataset, root, file)
        payload = idx.read_payload(path)
        arrays[kind] = idx.parse_idx(payload, path, magic)
        idx.verify_sha256(payload, path, file.sha256_raw)
    images, labels = arrays["images"], arrays["labels"]
    if len(images) != len(labels):
        raise GanbenchError(f"{paths['labels']}: {len(labels)} labels for the {len(images)} images of {paths['images']}")
    if images.shape[1:] != dataset.image_shape[:2] or not len(images):
        raise GanbenchError(f"{paths['images']}: {dataset.name} images are {dataset.image_shape[0]}x"
                            f"{dataset.image_shape[1]}, the file holds {'x'.join(map(str, images.shape))}")
    if labels.max() >= dataset.num_classes:
        raise GanbenchError(f"{paths['labels']}: label {labels.max()} out of range 0..{dataset.num_classes - 1}")
    images = images[..., None].copy()
    return (fit(images) if fit else images), labels.astype(np.int64)


def download_missing(dataset, root: Path, missing: str) -> None:
    """Download the dataset into `root` (one stderr line says where), or fail with one line that
    names every way to provide it."""
    ways = [f"put its files in {root / dataset.name} (--data-dir or GANBENCH_DATA choose the root)",
            f"run 'ganbench data download {dataset.name}' where there is a network"]
    if getattr(dataset, "provide_hint", ""):
        ways.append(dataset.provide_hint)
    if not downloads_allowed():
        raise GanbenchError(f"{missing}; downloads are off (--no-download); to provide it: {'; or '.join(ways)}")
    try:
        target = downloads.download(dataset.name, root)
    except GanbenchError as exc:
        raise GanbenchError(f"{missing}, and {exc}; to provide it: {'; or '.join(ways)}") from None
    print(f"ganbench: downloaded {dataset.name} to {target}", file=sys.stderr)


def gan_data(name: str, size: int, data_dir=None, image_dir="", channels: int = 0) -> tuple:
    """(uint8 images [N, size, size, C], int64 labels [N] or None): the dataset's GAN split fitted
    to the model's size, or an image folder cropped and resized (no labels; STL-10's unlabeled
    split has none either)."""
    if name == FOLDER:
        from ganbench.data.folder import read_folder

        return read_folder(image_dir, size, channels), None
    images, labels = load(name, GAN_SPLITS.get(name, "train"), data_dir, fit=lambda batch: fit_to_size(batch, size))
    if channels not in (0, images.shape[-1]):
        raise GanbenchError(f"{name} has {images.shape[-1]} channel(s), not {channels}")
    return images, (labels if labels.min() >= 0 else None)
