"""The datasets ganbench knows: where each lives (the data root, the built-in MNIST, Debian's
Fashion-MNIST), its canonical files and checksums, and the cache. Declarations only: reading is
data/catalog.py's, fetching data/download.py's, and both import from here (no cycle)."""

import os
from dataclasses import dataclass
from pathlib import Path

from ganbench.data.binary import CIFAR10, STL10
from ganbench.errors import GanbenchError


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
