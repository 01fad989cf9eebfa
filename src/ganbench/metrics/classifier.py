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

from ganbench import data
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
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = classifier_path(dataset)
    if not path.is_file():
        raise GanbenchError(f"no {dataset} classifier at {path}: train it with `ganbench classifier train --dataset {dataset}`")
    blob = path.read_bytes()
    try:
        tensors = load(blob)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["ganbench"])
    except (SafetensorError, KeyError, ValueError) as exc:
        raise GanbenchError(f"{path}: unreadable classifier ({exc}); retrain it with `ganbench classifier train`") from None
    if meta.get("arch") != ARCH_VERSION:
        raise GanbenchError(f"{path}: classifier {meta.get('arch')!r} is outdated; retrain it with `ganbench classifier train`")
    net = build_net(tensors["features.0.weight"].shape[1])
    net.load_state_dict(tensors)
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    return Classifier(net, meta)
