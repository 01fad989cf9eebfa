"""Readers for the binary releases of CIFAR-10 and STL-10 (no pickle).

CIFAR-10 (cifar-10-batches-bin/*.bin): records of 1 label byte + 3072 image bytes, the red, green
and blue 32x32 planes in turn, each row-major. STL-10 (stl10_binary/*_X.bin, *_y.bin): uint8
images of 3 x 96 x 96, each channel stored column-major; labels 1..10 in a separate file; the
unlabeled split has none (labels -1).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganbench.errors import DatasetMissing, GanbenchError

CIFAR_RECORD = 1 + 3 * 32 * 32
STL_IMAGE = 3 * 96 * 96


@dataclass(frozen=True)
class BinaryDataset:
    name: str
    folder: str          # the folder the published archive extracts to, under <root>/<name>/
    splits: dict         # split -> (image files, label file or None)
    image_shape: tuple   # (H, W, C) as stored
    url: str             # canonical archive (md5 of the download below)
    md5: str
    num_classes = 10

    @property
    def provide_hint(self) -> str:
        return f"extract {self.url.rsplit('/', 1)[-1]} ({self.url}) into <root>/{self.name}/"

    def read(self, root: Path, split: str, fit=None) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of a split; fit: applied to the images (STL-10: chunk by chunk while
        reading, so its 100k unlabeled images never sit in memory at full size)."""
        if split not in self.splits:
            raise GanbenchError(f"unknown split {split!r} of {self.name} (choose from {', '.join(self.splits)})")
        folder = root / self.name / self.folder
        images_files, labels_file = self.splits[split]
        paths = [existing(folder / name, self) for name in images_files]
        if self.name == "cifar10":
            images, labels = read_cifar(paths)
            return (fit(images) if fit else images), labels
        return read_stl(paths[0], existing(folder / labels_file, self) if labels_file else None, fit)


def existing(path: Path, dataset: BinaryDataset) -> Path:
    if not path.is_file():
        raise DatasetMissing(f"{dataset.name}: {path.name} not found in {path.parent}")
    return path


def check_records(path: Path, unit: int) -> int:
    """The number of `unit`-byte records in the file (which must hold a whole number of them)."""
    size = path.stat().st_size
    if size == 0 or size % unit:
        raise GanbenchError(f"{path}: {size} bytes is not a whole number of {unit}-byte records")
    return size // unit


def read_bytes(path: Path, unit: int) -> np.ndarray:
    check_records(path, unit)
    return np.fromfile(path, dtype=np.uint8).reshape(-1, unit)


def read_cifar(paths: list) -> tuple[np.ndarray, np.ndarray]:
    records = np.concatenate([read_bytes(p, CIFAR_RECORD) for p in paths])
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise GanbenchError(f"{paths[0].parent}: label {labels.max()} out of range 0..9 (not CIFAR-10 binary?)")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


STL_CHUNK = 256  # images read (and fitted) at a time: 7 MB


def read_stl(x_path: Path, y_path: Path | None, fit=None) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 images as uint8 NHWC, each chunk passed through `fit` as it is read; labels 0..9, or
    -1 for the unlabeled split."""
    n = check_records(x_path, STL_IMAGE)
    labels = np.full(n, -1, np.int64)
    if y_path is not None:
        labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
        if len(labels) != n:
            raise GanbenchError(f"{y_path}: {len(labels)} labels for {n} images")
        if labels.min() < 0 or labels.max() > 9:
            raise GanbenchError(f"{y_path}: labels must be 1..10")
    out = None
    with x_path.open("rb") as f:
        for start in range(0, n, STL_CHUNK):
            count = min(STL_CHUNK, n - start)
            raw = np.fromfile(f, dtype=np.uint8, count=count * STL_IMAGE)
            chunk = np.ascontiguousarray(raw.reshape(count, 3, 96, 96).transpose(0, 3, 2, 1))  # [n, c, w, h] stored
            chunk = fit(chunk) if fit else chunk
            if out is None:
                out = np.empty((n, *chunk.shape[1:]), np.uint8)
            out[start:start + count] = chunk
    return out, labels


CIFAR10 = BinaryDataset(
    name="cifar10",
    folder="cifar-10-batches-bin",
    splits={"train": (tuple(f"data_batch_{i}.bin" for i in range(1, 6)), None), "test": (("test_batch.bin",), None)},
    image_shape=(32, 32, 3),
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
)

STL10 = BinaryDataset(
    name="stl10",
    folder="stl10_binary",
    splits={
        "train": (("train_X.bin",), "train_y.bin"),
        "test": (("test_X.bin",), "test_y.bin"),
        "unlabeled": (("unlabeled_X.bin",), None),
    },
    image_shape=(96, 96, 3),
    url="http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
    md5="91f7769df0f17e558f3565bffb0c7dfb",
)
