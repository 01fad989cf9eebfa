"""Checksummed, atomic downloads of the IDX datasets from their canonical mirrors."""

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ganbench.data.catalog import IdxDataset, IdxFile, data_root, get_dataset
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


def fetch(url: str, dest: Path, file: IdxFile, timeout: float = 60.0) -> None:
    """Download `url` to `dest` atomically; the file appears only once it verifies."""
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
        if not is_verified(tmp, file, md5.hexdigest()):
            raise GanbenchError(f"download of {url} failed its checksum (md5 {md5.hexdigest()})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download(name: str, data_dir=None, base_url: str | None = None) -> Path:
    """Fetch every missing or unverified file of dataset `name` into <root>/<name>/; returns that dir."""
    dataset = get_dataset(name)
    if not isinstance(dataset, IdxDataset):
        raise GanbenchError(f"download of {name} is not supported yet: fetch {dataset.url} and extract it into "
                            f"{data_root(data_dir) / dataset.name}")
    target = data_root(data_dir) / dataset.name
    base = base_url or dataset.mirror
    for file in dataset.files.values():
        dest = target / f"{file.name}.gz"
        if dest.is_file() and is_verified(dest, file):
            continue
        fetch(base.rstrip("/") + "/" + dest.name, dest, file)
    return target
