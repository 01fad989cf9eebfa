"""Deterministic batches: padding, scaling and a data order keyed on (seed, epoch)."""

import numpy as np

from ganbench.errors import GanbenchError
from ganbench.rng import STREAM_DATA_LIMIT, STREAM_DATA_ORDER, keyed_rng


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad uint8 NHWC images symmetrically to size x size (28 -> 32 adds 2 px each side)."""
    _, h, w, _ = images.shape
    if h > size or w > size:
        raise GanbenchError(f"images are {h}x{w}, larger than the model's {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    pads = ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0))
    return np.pad(images, pads)


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def limited(images: np.ndarray, labels: np.ndarray | None, limit: float, seed: int) -> tuple:
    """(images, labels) cut to `limit` images (a count >= 1, or a fraction of the set in (0, 1);
    0: all), keyed on seed: as many of each class as can be (the first classes one more when the
    count does not divide), or a uniform subset when there are no labels; in the set's order."""
    if not limit:
        return images, labels
    count = int(limit) if limit >= 1 else max(1, round(limit * len(images)))
    if count > len(images):
        raise GanbenchError(f"data-limit {count} exceeds the {len(images)} images of the training set")
    rng = keyed_rng(seed, STREAM_DATA_LIMIT)
    if labels is None:
        return images[np.sort(rng.choice(len(images), count, replace=False))], None
    classes = np.unique(labels)
    share = [count // len(classes) + (k < count % len(classes)) for k in range(len(classes))]
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False) for c, n in zip(classes, share)])
    chosen.sort()
    return images[chosen], labels[chosen]


class BatchStream:
    """Batch i of a run, as a pure function of (seed, i): resume needs only the batch index.

    Each epoch is a fresh permutation keyed on (seed, epoch); the last partial batch of an epoch
    is dropped (drop_remainder), so every batch has exactly `batch_size` images.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, labels: np.ndarray | None = None):
        if batch_size > len(images):
            raise GanbenchError(f"batch size {batch_size} exceeds the {len(images)} images available")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = len(images) // batch_size
        self._epoch, self._order = -1, None

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = keyed_rng(self.seed, STREAM_DATA_ORDER, epoch).permutation(len(self.images))
        return self._order

    def indices(self, i: int) -> np.ndarray:
        epoch, within = divmod(i, self.batches_per_epoch)
        start = within * self.batch_size
        return self.order(epoch)[start : start + self.batch_size]

    def batch(self, i: int) -> np.ndarray:
        """float32 NHWC batch in [-1, 1]."""
        return to_unit_range(self.images[self.indices(i)])

    def batch_labels(self, i: int) -> np.ndarray:
        """int64 class labels of batch i (a labelled stream only)."""
        return self.labels[self.indices(i)]
