"""Checksummed, atomic downloads from the canonical mirrors: the IDX files of MNIST and
Fashion-MNIST, and the CIFAR-10 / STL-10 binary archives (extracted, then deleted)."""

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ganbench.data.binary import BinaryDataset
from ganbench.data.datasets import IdxFile, data_root, get_dataset
from ganbench.errors import GanbenchError
from ganbench.fileio import default_file_mode

CHUNK = 1 << 20


def _payload_sha256(path: Path) -> str | None:
    """sha256 of a gzip file's decompressed payload, or None when it is not valid gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
    except (OSError, EOFError):
        return None
    return digest.hexdigest()


def is_verified(path: Path, file: IdxFile, md5: str | None = None) -> bool:
    """True when the .gz at `path` is the canonical download (md5) or holds the canonical payload."""
    if md5 is None:
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return md5 == file.md5_gz or _payload_sha256(path) == file.sha256_raw


def fetch(url: str, dest: Path, accept, timeout: float = 60.0) -> None:
    """Download `url` to `dest` atomically; the file appears only once `accept(path, md5)` holds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        md5 = hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                        for chunk in iter(lambda: response.read(CHUNK), b""):
                            out.write(chunk)
                            md5.update(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError) as exc:
                raise GanbenchError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from None
            os.fchmod(out.fileno(), default_file_mode())
            out.flush()
            os.fsync(out.fileno())
        if not accept(tmp, md5.hexdigest()):
            raise GanbenchError(f"download of {url} failed its checksum: nothing was kept")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download(name: str, data_dir=None, base_url: str | None = None) -> Path:
    """Fetch every missing or unverified file of dataset `name` into <root>/<name>/; returns that dir.
    `base_url` replaces the mirror (the folder part of an archive's URL)."""
    dataset = get_dataset(name)
    target = data_root(data_dir) / dataset.name
    if isinstance(dataset, BinaryDataset):
        return download_archive(dataset, target, base_url)
    base = base_url or dataset.mirror
    for file in dataset.files.values():
        dest = target / f"{file.name}.gz"
        if dest.is_file() and is_verified(dest, file):
            continue
        fetch(base.rstrip("/") + "/" + dest.name, dest, lambda path, md5, f=file: is_verified(path, f, md5))
    return target


def download_archive(dataset: BinaryDataset, target: Path, base_url: str | None) -> Path:
    """Download the dataset's .tar.gz (md5-checked), extract its folder into `target`, delete the
    archive. The folder appears whole or not at all (extracted aside, then renamed)."""
    folder = target / dataset.folder
    if folder.is_dir():
        return target
    archive_name = dataset.url.rsplit("/", 1)[-1]
    url = base_url.rstrip("/") + "/" + archive_name if base_url else dataset.url
    archive = target / archive_name
    fetch(url, archive, lambda path, md5: md5 == dataset.md5)
    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=target))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                safe_extract(tar, staging)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise GanbenchError(f"{archive}: cannot extract ({exc})") from None
        if not (staging / dataset.folder).is_dir():
            raise GanbenchError(f"{archive}: holds no {dataset.folder}/ folder")
        os.replace(staging / dataset.folder, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return target


def safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with tarfile's "data" filter: no absolute paths, no members or links leading out of
    `dest`, no devices. Python before 3.11.4 (3.10.12) lacks the filter; there the same rules
    are checked here, member by member, before anything is written."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        link = (target.parent / member.linkname).resolve() if member.issym() else root / member.linkname
        if (not target.is_relative_to(root) or member.isdev()
                or (member.issym() or member.islnk()) and not link.is_relative_to(root)):
            raise tarfile.TarError(f"member {member.name!r} is unsafe (leads outside the folder, or is a device)")
    tar.extractall(dest)
