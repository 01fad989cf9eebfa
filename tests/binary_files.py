"""Small CIFAR-10 / STL-10 files written in exactly the published binary formats."""

import numpy as np


def write_cifar(root, records_per_file=20, seed=0):
    """cifar-10-batches-bin/: 1 label byte + R, G, B planes (32x32, row-major) per record."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    expected = {}
    for split, names in (("train", [f"data_batch_{i}.bin" for i in range(1, 6)]), ("test", ["test_batch.bin"])):
        images, labels = [], []
        for name in names:
            img = rng.integers(0, 256, (records_per_file, 32, 32, 3), dtype=np.uint8)
            lab = rng.integers(0, 10, records_per_file, dtype=np.uint8)
            planes = img.transpose(0, 3, 1, 2).reshape(records_per_file, -1)
            (folder / name).write_bytes(np.concatenate([lab[:, None], planes], axis=1).tobytes())
            images.append(img)
            labels.append(lab)
        expected[split] = (np.concatenate(images), np.concatenate(labels).astype(np.int64))
    return expected


def write_stl(root, n=7, seed=1):
    """stl10_binary/: X as 3 x 96 x 96 per image, each channel column-major; y as bytes 1..10."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10" / "stl10_binary"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    labels = rng.integers(1, 11, n, dtype=np.uint8)
    column_major = images.transpose(0, 3, 2, 1)  # [n, c, w, h]: h varies fastest
    for split in ("train", "test", "unlabeled"):
        (folder / f"{split}_X.bin").write_bytes(column_major.tobytes())
    for split in ("train", "test"):
        (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
    return images, labels.astype(np.int64) - 1
