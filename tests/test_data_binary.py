"""CIFAR-10 and STL-10 readers, on small files written in exactly the published binary formats."""

import numpy as np
import pytest

from ganbench import data
from ganbench.errors import GanbenchError

from binary_files import write_cifar, write_stl


def test_cifar10_reader(tmp_path):
    expected = write_cifar(tmp_path)
    for split in ("train", "test"):
        images, labels = data.load("cifar10", split, tmp_path)
        assert images.dtype == np.uint8 and images.shape == (len(expected[split][0]), 32, 32, 3)
        assert np.array_equal(images, expected[split][0])
        assert np.array_equal(labels, expected[split][1])
    assert data.load("cifar10", "train", tmp_path)[0].shape[0] == 100


def test_cifar10_red_plane_comes_first(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    record = np.zeros(3073, np.uint8)
    record[0] = 7
    record[1 + 0 * 1024 + 1] = 200   # red, row 0, column 1
    record[1 + 2 * 1024 + 32] = 100  # blue, row 1, column 0
    (folder / "test_batch.bin").write_bytes(record.tobytes())
    images, labels = data.load("cifar10", "test", tmp_path)
    assert labels.tolist() == [7]
    assert images[0, 0, 1].tolist() == [200, 0, 0] and images[0, 1, 0].tolist() == [0, 0, 100]


def test_stl10_reader_is_column_major(tmp_path):
    images, labels = write_stl(tmp_path)
    got, got_labels = data.load("stl10", "train", tmp_path)
    assert np.array_equal(got, images) and np.array_equal(got_labels, labels)
    unlabeled, none = data.load("stl10", "unlabeled", tmp_path)
    assert unlabeled.shape == (7, 96, 96, 3) and (none == -1).all()


def test_stl10_single_pixel_orientation(tmp_path):
    folder = tmp_path / "stl10" / "stl10_binary"
    folder.mkdir(parents=True)
    raw = np.zeros(3 * 96 * 96, np.uint8)
    raw[1] = 255  # channel 0, column 0, row 1 (column-major): pixel (row 1, col 0)
    (folder / "test_X.bin").write_bytes(raw.tobytes())
    (folder / "test_y.bin").write_bytes(bytes([10]))
    images, labels = data.load("stl10", "test", tmp_path)
    assert images[0, 1, 0, 0] == 255 and images.sum() == 255 and labels.tolist() == [9]


def test_binary_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_NO_DOWNLOAD", "1")  # a missing archive is named, not fetched
    write_cifar(tmp_path)
    bad = tmp_path / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(GanbenchError, match=r"test_batch.bin: 61455 bytes is not a whole number of 3073-byte records"):
        data.load("cifar10", "test", tmp_path)
    with pytest.raises(GanbenchError, match=r"stl10: train_X.bin not found in .*stl10_binary; downloads are off .*"
                       r"or extract stl10_binary.tar.gz \(http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz\) "
                       r"into <root>/stl10/$"):
        data.load("stl10", "train", tmp_path)
    with pytest.raises(GanbenchError, match=r"unknown split 'unlabeled' of cifar10"):
        data.load("cifar10", "unlabeled", tmp_path)


def test_cifar10_batches_fit_a_three_channel_model(tmp_path):
    """The CIFAR reader's images batch as 3-channel 32x32 inputs of a 3-channel dcgan (training
    on format-exact files: test_presets)."""
    from ganbench.archs import build_spec

    write_cifar(tmp_path)
    images, _ = data.load("cifar10", "train", tmp_path)
    stream = data.BatchStream(data.pad_to(images, 32), 16, seed=0)
    assert stream.batch(0).shape == (16, 32, 32, 3)
    assert build_spec("dcgan", 3).image_shape == (3, 32, 32)
    with pytest.raises(GanbenchError, match=r"images are 96x96, larger than the model's 32x32"):
        data.pad_to(np.zeros((1, 96, 96, 3), np.uint8), 32)
