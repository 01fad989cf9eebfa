"""Domain classifiers for MNIST and Fashion-MNIST: the offline feature space of the metrics.

A small CNN (PyTorch), trained deterministically on the padded 32x32 training split and saved as
one safetensors file in the cache directory, its header holding JSON metadata (test accuracy,
data hash). Its 256-d penultimate activations are the features and its softmax the class
probabilities, as TF-GAN's mnist_frechet_distance and mnist_score use a MNIST classifier.
"""

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ganbench import data, validation
from ganbench.checkpoint import tensors_digest
from ganbench.data.catalog import cache_dir
from ganbench.fileio import atomic_write
from ganbench.errors import GanbenchError
from ganbench.rng import STREAM_DATA_ORDER, keyed_rng

FEATURE_DIM = 256
# Epochs that reach the required test accuracy (MNIST >= 99.0%, Fashion-MNIST >= 91.0%), with
# the learning rate decayed linearly to 0 (a constant rate left MNIST at 98.9% after 3 epochs).
EPOCHS = {"mnist": 3, "fashion-mnist": 6}
MIN_ACCURACY = {"mnist": 0.990, "fashion-mnist": 0.910}
BATCH = 128
LR = 1e-3
ARCH_VERSION = "cnn-32-64-128-fc256-v2"


def classifier_path(dataset: str) -> Path:
    if dataset not in EPOCHS:
        raise GanbenchError(
            f"classifier metrics exist for {' and '.join(EPOCHS)} only; use --features inception for {dataset}"
        )
    return cache_dir() / "classifiers" / f"{dataset}.safetensors"


def data_hash(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(images.tobytes())
    digest.update(labels.tobytes())
    return digest.hexdigest()[:16]


def build_net(channels: int = 1):
    from torch import nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    features = nn.Sequential(
        *block(channels, 32), *block(32, 64), *block(64, 128),  # 32 -> 16 -> 8 -> 4
        nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURE_DIM), nn.ReLU(),
    )
    head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, 10))
    return nn.ModuleDict({"features": features, "head": head})


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC (28 or 32 px) -> float32 NCHW 32x32 in [-1, 1], the generators' range."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise GanbenchError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    if images.shape[1] != 32:
        images = data.pad_to(images, 32)
    return np.ascontiguousarray(data.to_unit_range(images).transpose(0, 3, 1, 2))


class Classifier:
    """A trained classifier: features(images) and probs(images) on uint8 NHWC."""

    resize = "none: 28x28 zero-padded to 32x32"

    def __init__(self, net, meta: dict):
        self.net, self.meta = net.eval(), meta
        self.description = f"ganbench {meta.get('dataset')} classifier ({meta.get('arch')}), penultimate {FEATURE_DIM}-d"

    def run(self, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """(features float64 [N, 256], probabilities float64 [N, 10])."""
        import torch

        if images.shape[1:3] not in ((28, 28), (32, 32)):
            h, w = images.shape[1:3]
            raise GanbenchError(f"the {self.meta.get('dataset')} classifier takes 28x28 or 32x32 images, got {h}x{w}")

        feats, probs = [], []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = torch.from_numpy(prepare(images[start : start + batch]))
                f = self.net["features"](x)
                feats.append(f.double().numpy())
                probs.append(torch.softmax(self.net["head"](f), dim=1).double().numpy())
        return np.concatenate(feats), np.concatenate(probs)

    @property
    def hash(self) -> str:
        return self.meta["weights_sha256"][:16]


def train_classifier(dataset: str, data_dir=None, seed: int = 0, epochs: int | None = None, progress=True,
                     subset: int | None = None) -> dict:
    """Train deterministically, save to the cache, and return the metadata (with test accuracy).
    `subset` trains on the first N training images only (quick classifiers for tests)."""
    import torch
    from safetensors.torch import save

    path = classifier_path(dataset)
    images, labels = data.load(dataset, "train", data_dir)
    images, labels = images[:subset], labels[:subset]
    test_images, test_labels = data.load(dataset, "test", data_dir)
    epochs = epochs or EPOCHS[dataset]
    start_time = time.perf_counter()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        net = build_net(images.shape[-1])
        fit(net, torch.from_numpy(prepare(images)), torch.from_numpy(labels), epochs, seed, progress, dataset)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    classifier = Classifier(net, {"dataset": dataset})
    _, probs = classifier.run(test_images)
    accuracy = float((probs.argmax(axis=1) == test_labels).mean())
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    meta = {
        "dataset": dataset,
        "arch": ARCH_VERSION,
        "test_accuracy": accuracy,
        "required_accuracy": MIN_ACCURACY[dataset],
        "train_data_hash": data_hash(images, labels),
        "epochs": epochs,
        "seed": seed,
        "train_images": len(images),
        "train_seconds": round(time.perf_counter() - start_time, 1),
        "torch": torch.__version__,
    }
    meta["tensors_sha256"] = tensors_digest({k: v.numpy() for k, v in tensors.items()})
    blob = save(tensors, metadata={"ganbench": json.dumps(meta)})
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    atomic_write(path, blob)
    return meta


def fit(net, x_all, y_all, epochs: int, seed: int, progress: bool, dataset: str) -> None:
    """Adam with the learning rate decayed linearly to 0; data order keyed on (seed, epoch)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(net.parameters(), lr=LR)
    steps_per_epoch = len(x_all) // BATCH
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total)
    net.train()
    with tqdm(total=total, disable=not progress, desc=f"classifier {dataset}", unit="step") as bar:
        for epoch in range(epochs):
            order = torch.from_numpy(keyed_rng(seed, STREAM_DATA_ORDER, epoch).permutation(len(x_all)))
            for i in range(steps_per_epoch):
                idx = order[i * BATCH : (i + 1) * BATCH]
                loss = F.cross_entropy(net["head"](net["features"](x_all[idx])), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")


def load_classifier(dataset: str) -> Classifier:
    """The dataset's classifier from the cache, every tensor checked against its recorded sha256
    and the network's names, dtypes and shapes before torch sees it."""
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load

    path = classifier_path(dataset)
    if not path.is_file():
        raise GanbenchError(f"no {dataset} classifier at {path}: train it with `ganbench classifier train --dataset {dataset}`")
    retrain = f"retrain it with `ganbench classifier train --dataset {dataset}`"
    try:
        blob = path.read_bytes()
        tensors = load(blob)
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("ganbench")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanbenchError(f"{path}: unreadable classifier ({str(exc).splitlines()[0]}); {retrain}") from None
    meta = validation.json_object(validation.parse_json(raw or "null", f"{path}: metadata"), path, "the metadata")
    if meta.get("arch") != ARCH_VERSION or "tensors_sha256" not in meta:
        raise GanbenchError(f"{path}: classifier {validation.short(meta.get('arch'))} is outdated; {retrain}")
    if meta.get("dataset") != dataset:
        raise GanbenchError(f"{path}: not the {dataset} classifier (its metadata names {validation.short(meta.get('dataset'))})")
    validation.number(meta.get("test_accuracy"), path, "test_accuracy")
    if tensors_digest(tensors) != meta["tensors_sha256"]:
        raise GanbenchError(f"{path}: corrupt classifier (its tensors do not match the sha256 recorded when it was "
                            f"trained); {retrain}")
    net = build_net(3 if tensors.get("features.0.weight", np.empty((0, 1))).shape[1:2] == (3,) else 1)
    expected = {name: (tuple(value.shape), str(value.dtype).removeprefix("torch.")) for name, value in net.state_dict().items()}
    found = {name: (value.shape, str(value.dtype)) for name, value in tensors.items()}
    if found != expected:
        raise GanbenchError(f"{path}: its tensors are not those of the classifier network {ARCH_VERSION}; {retrain}")
    net.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in tensors.items()})
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    return Classifier(net, meta)
