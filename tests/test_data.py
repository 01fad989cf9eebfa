import contextlib
import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from ganbench import data
from ganbench.data import catalog, download
from ganbench.errors import GanbenchError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_mnist_train_values(mnist_train):
    images, labels = mnist_train
    assert images.shape == (60000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert abs(images.mean() / 255 - 0.1307) < 1e-4
    assert abs((images / 255).std() - 0.3081) < 1e-4
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS


def test_mnist_test_split(data_dir):
    images, labels = data.load("mnist", "test", data_dir)
    assert images.shape == (10000, 28, 28, 1)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_train_values(fashion_dir, data_dir):
    images, labels = data.load("fashion-mnist", "train", data_dir)
    assert images.shape == (60000, 28, 28, 1) and images.dtype == np.uint8
    assert abs(images.mean() / 255 - 0.2860) < 1e-4
    assert abs((images / 255).std() - 0.3530) < 1e-4
    assert np.bincount(labels).tolist() == [6000] * 10


@pytest.fixture
def mnist_copy(mnist_dir, tmp_path):
    """A writable copy of the MNIST files under tmp_path/mnist."""
    shutil.copytree(mnist_dir, tmp_path / "mnist", ignore=shutil.ignore_patterns("*.md"))
    return tmp_path


def raw_labels(root):
    return gzip.decompress((root / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())


def replace_labels_with_raw(root, payload: bytes):
    (root / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    (root / "mnist" / "train-labels-idx1-ubyte").write_bytes(payload)


def test_truncated_gzip_is_named(mnist_copy):
    path = mnist_copy / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(GanbenchError, match=r"train-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        data.load("mnist", "train", mnist_copy)


def test_bad_magic_is_named(mnist_copy):
    payload = bytearray(raw_labels(mnist_copy))
    payload[3] = 0x03
    replace_labels_with_raw(mnist_copy, bytes(payload))
    with pytest.raises(GanbenchError, match=r"bad magic number 0x00000803, expected 0x00000801"):
        data.load("mnist", "train", mnist_copy)


def test_wrong_size_is_named(mnist_copy):
    replace_labels_with_raw(mnist_copy, raw_labels(mnist_copy)[:-7])
    with pytest.raises(GanbenchError, match=r"wrong size, 60001 bytes where dims \(60000,\) need 60008"):
        data.load("mnist", "train", mnist_copy)


def test_checksum_mismatch_is_named(mnist_copy):
    payload = bytearray(raw_labels(mnist_copy))
    payload[100] = (payload[100] + 1) % 10
    replace_labels_with_raw(mnist_copy, bytes(payload))
    with pytest.raises(GanbenchError, match=r"checksum mismatch"):
        data.load("mnist", "train", mnist_copy)


def test_raw_idx_files_are_read(mnist_copy):
    replace_labels_with_raw(mnist_copy, raw_labels(mnist_copy))
    _, labels = data.load("mnist", "train", mnist_copy)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_mnist_is_built_in(tmp_path):
    """An empty data root still has MNIST: the package ships it, checked like any copy."""
    assert (catalog.EMBEDDED_MNIST / "train-images-idx3-ubyte.gz").is_file()
    assert catalog.EMBEDDED_MNIST in catalog.MNIST.extra_dirs
    images, labels = data.load("mnist", "test", tmp_path / "empty-root")
    assert images.shape == (10000, 28, 28, 1) and np.bincount(labels)[0] == 980
    assert not (tmp_path / "empty-root").exists()  # nothing was downloaded


def without_extra_dirs(monkeypatch, name):
    """The dataset as if neither the built-in copy nor Debian's package were there."""
    bare = dataclasses.replace(catalog.DATASETS[name], extra_dirs=())
    monkeypatch.setitem(catalog.DATASETS, name, bare)
    return bare


def test_missing_data_with_downloads_off_names_every_way(tmp_path, monkeypatch):
    without_extra_dirs(monkeypatch, "fashion-mnist")
    monkeypatch.setenv("GANBENCH_NO_DOWNLOAD", "1")
    root = tmp_path / "root"
    with pytest.raises(GanbenchError) as error:
        data.load("fashion-mnist", "train", root)
    assert str(error.value) == (
        f"fashion-mnist: train-images-idx3-ubyte.gz not found in {root}/fashion-mnist; downloads are off "
        f"(--no-download); to provide it: put its files in {root}/fashion-mnist (--data-dir or GANBENCH_DATA "
        "choose the root); or run 'ganbench data download fashion-mnist' where there is a network; or apt "
        "install dataset-fashion-mnist (Debian, Ubuntu)")
    assert not root.exists()


def test_missing_data_is_downloaded_on_first_use(mnist_dir, tmp_path, monkeypatch, http_server, capfd):
    """Served from a local server (the built-in MNIST's files, as if MNIST were not built in)."""
    served, url = http_server
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, served / f.name)
    bare = without_extra_dirs(monkeypatch, "mnist")
    monkeypatch.setitem(catalog.DATASETS, "mnist", dataclasses.replace(bare, mirror=url))
    monkeypatch.setenv("GANBENCH_NO_DOWNLOAD", "")  # downloads on
    images, _ = data.load("mnist", "test", tmp_path / "root")
    assert images.shape == (10000, 28, 28, 1)
    assert sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir()) == sorted(
        p.name for p in served.iterdir())
    assert capfd.readouterr().err.strip().splitlines()[-1] == (
        f"ganbench: downloaded mnist to {tmp_path}/root/mnist")


def test_failed_download_names_every_way(tmp_path, monkeypatch, http_server):
    _, url = http_server  # serves nothing: every file is a 404
    bare = without_extra_dirs(monkeypatch, "mnist")
    monkeypatch.setitem(catalog.DATASETS, "mnist", dataclasses.replace(bare, mirror=url))
    monkeypatch.setenv("GANBENCH_NO_DOWNLOAD", "")  # downloads on
    with pytest.raises(GanbenchError) as error:
        data.load("mnist", "train", tmp_path / "root")
    message = str(error.value)
    assert message.startswith(f"mnist: train-images-idx3-ubyte.gz not found in {tmp_path}/root/mnist, and "
                              f"download of {url}train-images-idx3-ubyte.gz failed: ")
    assert message.endswith(f"; to provide it: put its files in {tmp_path}/root/mnist (--data-dir or GANBENCH_DATA "
                            "choose the root); or run 'ganbench data download mnist' where there is a network")
    assert "\n" not in message


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    assert str(catalog.data_root("explicit")) == "explicit"
    assert catalog.data_root(None) == tmp_path
    monkeypatch.delenv("GANBENCH_DATA")
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    assert catalog.data_root(None) == tmp_path / "cache" / "data"
    monkeypatch.delenv("GANBENCH_CACHE")
    assert catalog.data_root(None) == Path.home() / ".cache" / "ganbench" / "data"


def test_fashion_mnist_falls_back_to_debian_dir(fashion_dir, tmp_path, monkeypatch):
    debian = tmp_path / "usr-share"
    shutil.copytree(fashion_dir, debian)
    assert catalog.DEBIAN_FASHION_MNIST in catalog.FASHION_MNIST.extra_dirs
    patched = catalog.IdxDataset(**{**catalog.FASHION_MNIST.__dict__, "extra_dirs": (debian,)})
    monkeypatch.setitem(catalog.DATASETS, "fashion-mnist", patched)
    images, _ = data.load("fashion-mnist", "test", tmp_path / "empty-root")
    assert images.shape == (10000, 28, 28, 1)


def test_batches_pad_scale_and_order(mnist_train):
    images = data.pad_to(mnist_train[0][:1000], 32)
    assert images.shape == (1000, 32, 32, 1)
    assert images[:, :2].max() == 0 and images[:, 30:].max() == 0
    assert np.array_equal(images[:, 2:30, 2:30], mnist_train[0][:1000])
    stream = data.BatchStream(images, 64, seed=3)
    assert stream.batches_per_epoch == 15  # 1000 // 64: the remainder is dropped
    epoch0 = np.concatenate([stream.indices(i) for i in range(15)])
    assert len(set(epoch0.tolist())) == 960
    assert not np.array_equal(stream.indices(0), stream.indices(15))  # a fresh order each epoch
    batch = stream.batch(2)
    assert batch.dtype == np.float32 and batch.min() == -1.0 and batch.max() == 1.0
    again = data.BatchStream(images, 64, seed=3)
    assert np.array_equal(again.batch(17), stream.batch(17))
    other = data.BatchStream(images, 64, seed=4)
    assert not np.array_equal(other.indices(0), stream.indices(0))


def test_to_unit_range_endpoints():
    values = data.to_unit_range(np.array([0, 255, 128], np.uint8))
    assert values.tolist() == [-1.0, 1.0, pytest.approx(0.003921569, abs=1e-7)]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    """A local HTTP server on 127.0.0.1 serving `folder`; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    with serve(served) as url:
        yield served, url


def tar_gz(source_root, member, dest):
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(source_root / member, arcname=member)
    return hashlib.md5(dest.read_bytes()).hexdigest()


@pytest.fixture(params=["data_filter", "own_checks"])
def tar_safety(request, monkeypatch):
    """Both extraction paths: tarfile's data filter, and ganbench's checks where Python (before
    3.11.4 / 3.10.12) has no filter."""
    if request.param == "own_checks":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)  # absent before Python 3.11.4
    return request.param


@pytest.mark.parametrize("name", ["cifar10", "stl10"])
def test_archive_download_extracts_a_readable_dataset(tmp_path, http_server, monkeypatch, name, tar_safety):
    from binary_files import write_cifar, write_stl

    served, url = http_server
    made = tmp_path / "made"
    expected = write_cifar(made)["test"][0] if name == "cifar10" else write_stl(made)[0]
    dataset = catalog.DATASETS[name]
    archive = served / dataset.url.rsplit("/", 1)[-1]
    md5 = tar_gz(made / name, dataset.folder, archive)
    monkeypatch.setitem(catalog.DATASETS, name, dataclasses.replace(dataset, md5=md5))
    target = download.download(name, tmp_path / "root", base_url=url)
    assert sorted(p.name for p in target.iterdir()) == [dataset.folder]  # archive deleted, nothing else
    images, _ = data.load(name, "test", tmp_path / "root")
    assert np.array_equal(images, expected)


def test_archive_with_an_unsafe_member_is_refused(tmp_path, http_server, monkeypatch, tar_safety):
    served, url = http_server
    evil = tmp_path / "evil"
    (evil / "cifar-10-batches-bin").mkdir(parents=True)
    archive = served / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(evil / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(catalog.DATASETS, "cifar10", dataclasses.replace(catalog.DATASETS["cifar10"], md5=md5))
    with pytest.raises(GanbenchError, match="cannot extract"):
        download.download("cifar10", tmp_path / "root", base_url=url)
    assert not (tmp_path / "root" / "escaped.txt").exists()
    assert not list((tmp_path / "root" / "cifar10").iterdir())


def test_download_accepts_recompressed_payload(mnist_dir, tmp_path, http_server):
    served, url = http_server
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, served / f.name)
    target = download.download("mnist", tmp_path / "root", base_url=url)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in served.iterdir())
    _, labels = data.load("mnist", "train", tmp_path / "root")
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS


def test_download_rejects_bad_checksum_and_leaves_nothing(mnist_dir, tmp_path, http_server):
    served, url = http_server
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, served / f.name)
    bad = served / "train-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(bad.read_bytes()))
    payload[200] ^= 1
    bad.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(GanbenchError, match=r"train-labels-idx1-ubyte.gz failed its checksum"):
        download.download("mnist", tmp_path / "root", base_url=url)
    assert not (tmp_path / "root" / "mnist" / "train-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "root" / "mnist").glob(".*part"))


def test_download_unreachable_server(tmp_path, http_server):
    _, url = http_server  # serves nothing: every file is a 404
    with pytest.raises(GanbenchError, match=r"download of .*train-images-idx3-ubyte.gz failed"):
        download.download("mnist", tmp_path / "root", base_url=url)


def test_unknown_dataset():
    with pytest.raises(GanbenchError, match=r"unknown dataset 'cifar' \(choose from mnist, fashion-mnist, cifar10, stl10, folder\)"):
        data.load("cifar")
