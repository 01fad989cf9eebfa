"""Image folders (Pillow: centre crop, resize, grayscale or RGB) and fitting datasets to a model
size (zero padding 28 -> 32, box downsampling 96 -> 48 for STL-10)."""

import numpy as np
import pytest
from PIL import Image

from ganbench.data import catalog
from ganbench.data.folder import read_folder
from ganbench.errors import GanbenchError

from binary_files import write_stl


def banded(height=40, width=20, mode="L"):
    """A portrait image: top 10 rows white, middle 20 rows grey 100, bottom 10 rows black.
    Its centre square crop (rows 10..29) is uniformly 100."""
    a = np.zeros((height, width), np.uint8)
    a[:10], a[10:30] = 255, 100
    image = Image.fromarray(a, "L")
    return image.convert(mode)


def test_centre_crop_and_resize(tmp_path):
    banded().save(tmp_path / "a.png")
    banded().transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sub_b.jpg", quality=100)
    images = read_folder(tmp_path, 8)
    assert images.shape == (2, 8, 8, 1) and images.dtype == np.uint8
    assert np.all(images[0] == 100)  # the PNG: exact
    assert np.abs(images[1].astype(int) - 100).max() <= 2  # the JPEG: lossy, still only the centre band


def test_folder_channels_auto_and_forced(tmp_path):
    (tmp_path / "nested").mkdir()
    banded().save(tmp_path / "nested" / "gray.png")
    assert read_folder(tmp_path, 4).shape[-1] == 1
    rgb = read_folder(tmp_path, 4, channels=3)
    assert rgb.shape == (1, 4, 4, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])
    Image.new("RGB", (6, 6), (255, 0, 0)).save(tmp_path / "red.png")
    mixed = read_folder(tmp_path, 4)
    assert mixed.shape == (2, 4, 4, 3)
    assert tuple(mixed[1, 0, 0]) == (255, 0, 0)  # sorted by path: nested/gray.png, red.png


def test_unreadable_and_missing_images_are_named(tmp_path):
    with pytest.raises(GanbenchError, match="not found"):
        read_folder(tmp_path / "nope", 8)
    with pytest.raises(GanbenchError, match="holds no .png"):
        read_folder(tmp_path, 8)
    banded().save(tmp_path / "ok.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(GanbenchError, match=r"broken\.jpg: unreadable image"):
        read_folder(tmp_path, 8)


def test_fit_to_size_pads_and_box_downsamples():
    small = np.full((2, 28, 28, 1), 7, np.uint8)
    padded = catalog.fit_to_size(small, 32)
    assert padded.shape == (2, 32, 32, 1) and padded[0, 2, 2, 0] == 7 and padded[0, 0, 0, 0] == 0
    big = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    down = catalog.fit_to_size(big, 48)
    block = big[1, 10:12, 20:22, 2].astype(float)
    assert down[1, 5, 10, 2] == np.floor(block.mean() + 0.5)  # the 2x2 mean, half rounded up
    with pytest.raises(GanbenchError, match="by a whole factor"):
        catalog.fit_to_size(big, 40)


def test_stl10_gan_images_are_the_unlabeled_split_at_48(tmp_path):
    images, _ = write_stl(tmp_path, n=4)
    out, labels = catalog.gan_data("stl10", 48, tmp_path)
    assert out.shape == (4, 48, 48, 3) and labels is None  # the unlabeled split has no labels
    assert np.array_equal(out, catalog.fit_to_size(images, 48))
    with pytest.raises(GanbenchError, match="stl10 has 3 channel"):
        catalog.gan_data("stl10", 48, tmp_path, channels=1)


def test_training_on_a_folder_records_its_shape(tmp_path):
    from ganbench import checkpoint, sampling
    from ganbench.config import TrainConfig
    from ganbench.training import loop

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB").save(folder / f"{i}.png")
    config = TrainConfig(model="sngan_cnn", dataset="folder", image_dir=str(folder), width=0.0625, loss="hinge",
                         batch_size=4, steps=1, sample_every=1, checkpoint_every=1)
    last = loop.train(config, tmp_path / "run", progress=False)
    meta = checkpoint.load(last).meta
    assert (meta["config"]["image_size"], meta["config"]["channels"]) == (32, 3)
    folder.rename(tmp_path / "gone")  # sampling needs no data
    images = sampling.load_generator(last).sample(4)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8 and images.std() > 0


def test_stl10_is_fitted_while_read_in_bounded_memory(tmp_path):
    """STL-10's unlabeled split is read and reduced to 48x48 in chunks: the process's peak memory
    grows by less than twice the uint8 result (8000 random images here: a 221 MB file, a 55 MB
    result), where reading the whole file first needed 4x the file in int64 temporaries."""
    import subprocess
    import sys

    n = 8000
    folder = tmp_path / "stl10" / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (folder / "unlabeled_X.bin").open("wb") as f:
        for _ in range(n // 1000):
            f.write(rng.integers(0, 256, 1000 * 3 * 96 * 96, dtype=np.uint8).tobytes())
    script = (
        "import resource, sys\n"
        "from ganbench.data import catalog\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "images, _ = catalog.gan_data('stl10', 48, sys.argv[1])\n"
        "print(images.nbytes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result_bytes, grown = map(int, done.stdout.split())
    assert result_bytes == n * 48 * 48 * 3
    assert grown < 2 * result_bytes, f"peak grew by {grown / 1e6:.0f} MB for a {result_bytes / 1e6:.0f} MB result"
