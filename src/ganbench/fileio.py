"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never a mix."""

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def naming_errors(path):
    """An OSError raised inside names `path`, the file being written (not a temporary file, or no
    file at all, as a failed write() reports), so the one error line says which file failed."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def default_file_mode() -> int:
    """0o666 less the umask: what open() would give. mkstemp's files are 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, data: bytes) -> Path:
    """Write to a temp file in the same folder, fsync, os.replace, then fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with naming_errors(path):
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                os.fchmod(f.fileno(), default_file_mode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_json(path, obj) -> Path:
    """obj as indented JSON with a final newline, written atomically."""
    return atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())
