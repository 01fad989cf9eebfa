"""Where each dataset lives, how it is checked, and how it is read into numpy.

Readers return uint8 images in NHWC layout and int64 labels; nothing here imports a framework.
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganbench.data import idx
from ganbench.data.batches import pad_to
from ganbench.data.binary import CIFAR10, STL10
from ganbench.errors import DatasetMissing, GanbenchError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt install dataset-fashion-mnist
EMBEDDED_MNIST = Path(__file__).parent / "mnist"  # shipped with ganbench (11 MB): works offline


@dataclass(frozen=True)
class IdxFile:
    name: str            # file name without .gz
    md5_gz: str          # md5 of the canonical download
    sha256_raw: str      # sha256 of the decompressed payload (accepts re-compressed copies)


@dataclass(frozen=True)
class IdxDataset:
    name: str
    mirror: str          # base URL of the canonical download
    files: dict          # (split, "images"|"labels") -> IdxFile
    extra_dirs: tuple = ()  # searched after the data root, e.g. Debian's package
    provide_hint: str = ""  # one more way to provide the files, named when they are missing

    image_shape = (28, 28, 1)
    num_classes = 10


def _files(md5s: dict, shas: dict) -> dict:
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, dims in (("images", "idx3"), ("labels", "idx1")):
            name = f"{prefix}-{kind}-{dims}-ubyte"
            out[(split, kind)] = IdxFile(name, md5s[name], shas[name])
    return out


MNIST = IdxDataset(
    name="mnist",
    mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",
    files=_files(
        {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    extra_dirs=(EMBEDDED_MNIST,),
)

FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    files=_files(
        {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
    extra_dirs=(DEBIAN_FASHION_MNIST,),
    provide_hint="apt install dataset-fashion-mnist (Debian, Ubuntu)",
)

DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST, CIFAR10, STL10)}
FOLDER = "folder"  # any image folder: see data/folder.py
GAN_SPLITS = {"stl10": "unlabeled"}  # the split GANs train on, when not "train"
LABELLED = ("mnist", "fashion-mnist", "cifar10")  # datasets whose GAN split has class labels


def get_dataset(name: str):
    try:
        return DATASETS[name]
    except KeyError:
        raise GanbenchError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)}, {FOLDER})") from None


def default_image_size(name: str) -> int:
    """The model size a dataset trains at: STL-10 at 48 (as SNGAN), everything else at 32."""
    return 48 if name == "stl10" else 32


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


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """--data-dir, else $GANBENCH_DATA, else <cache>/data: the same for every command and the tests."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get("GANBENCH_DATA"):
        return Path(os.environ["GANBENCH_DATA"])
    return cache_dir() / "data"


def cache_dir() -> Path:
    """$GANBENCH_CACHE, else ~/.cache/ganbench: classifiers, Inception weights, default data root."""
    return Path(os.environ.get("GANBENCH_CACHE") or Path.home() / ".cache" / "ganbench")


def downloads_allowed() -> bool:
    """False when --no-download (which sets GANBENCH_NO_DOWNLOAD for the process and its children)."""
    return os.environ.get("GANBENCH_NO_DOWNLOAD", "") in ("", "0")


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
    from ganbench.data.download import download

    try:
        target = download(dataset.name, root)
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
