import os
from pathlib import Path

import numpy as np
import pytest



@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root, found as every command finds it: $GANBENCH_DATA, else ~/.cache/ganbench/data.
    MNIST is built in; Fashion-MNIST comes from the root or Debian's package, and the tests that
    need it skip, saying how to provide it, where it is neither (the tests never download). The
    root is fixed for the session (subprocesses too), whatever GANBENCH_CACHE a test sets."""
    from ganbench.data import catalog

    root = catalog.data_root(None)
    saved = os.environ.get("GANBENCH_DATA")
    os.environ["GANBENCH_DATA"] = str(root)
    yield root
    if saved is None:
        del os.environ["GANBENCH_DATA"]


def dataset_dir(name: str, root: Path) -> Path:
    """The folder that holds a dataset's IDX files; the test skips, naming every way to provide
    them, where the machine has none."""
    from ganbench import data
    from ganbench.data import catalog
    from ganbench.errors import GanbenchError

    saved = os.environ.get("GANBENCH_NO_DOWNLOAD")
    os.environ["GANBENCH_NO_DOWNLOAD"] = "1"
    try:
        data.load(name, "test", root)
    except GanbenchError as missing:
        if "downloads are off" not in str(missing):
            raise  # present but damaged: a failure, not a skip
        pytest.skip(f"needs {name}, which this machine lacks: {missing}")
    finally:
        if saved is None:
            del os.environ["GANBENCH_NO_DOWNLOAD"]
        else:
            os.environ["GANBENCH_NO_DOWNLOAD"] = saved
    dataset = catalog.get_dataset(name)
    return catalog.find_file(dataset, root, dataset.files[("train", "images")]).parent


@pytest.fixture(scope="session")
def mnist_dir(data_dir) -> Path:
    return dataset_dir("mnist", data_dir)


@pytest.fixture(scope="session")
def fashion_dir(data_dir) -> Path:
    return dataset_dir("fashion-mnist", data_dir)


@pytest.fixture(scope="session")
def mnist_train(data_dir):
    from ganbench import data

    return data.load("mnist", "train", data_dir)


@pytest.fixture(scope="session")
def spec():
    from ganbench.archs import build_spec

    return build_spec("dcgan", 1)


@pytest.fixture(scope="session")
def init_state(spec):
    from ganbench.init import init_gan

    return {"nets": init_gan(spec, 0)}


@pytest.fixture(scope="session")
def real_batches(mnist_train):
    """[5, 1, 64, 32, 32, 1] float32 MNIST batches (5 steps, n_dis = 1)."""
    from ganbench import data

    stream = data.BatchStream(data.pad_to(mnist_train[0], 32), 64, seed=0)
    return np.stack([stream.batch(i) for i in range(5)])[:, None]


@pytest.fixture(scope="module")
def quick_classifier(tmp_path_factory, data_dir):
    """A classifier trained on 6000 MNIST images, in a private cache (not the user's) that
    GANBENCH_CACHE names until the module's tests are done (subprocesses see it too)."""
    import os

    from ganbench.metrics.classifier import load_classifier, train_classifier

    saved = os.environ.get("GANBENCH_CACHE")
    os.environ["GANBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    meta = train_classifier("mnist", data_dir, epochs=1, progress=False, subset=6000)
    assert meta["test_accuracy"] > 0.93
    yield load_classifier("mnist")
    if saved is None:
        del os.environ["GANBENCH_CACHE"]
    else:
        os.environ["GANBENCH_CACHE"] = saved
