"""Sampling from a checkpoint with either backend, whichever wrote it."""

from pathlib import Path

import numpy as np

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.images import save_grid
from ganbench.rng import STREAM_SAMPLE, normal_noise
from ganbench.training.loop import spec_from_metadata


def load_generator(checkpoint_path, backend_name: str | None = None):
    """A backend GAN restored from a checkpoint (weights only; optimiser state is not needed).
    Without a backend name, the backend that trained it (`gan.backend` says which)."""
    state, meta, _ = checkpoint.load(checkpoint_path, spec_from_metadata)
    spec = spec_from_metadata(meta)
    config = TrainConfig.from_dict(meta["config"])
    gan = get_backend(backend_name or config.backend).GAN(spec, {"nets": state["nets"]}, config)
    return gan, spec, meta


def sample_images(gan, spec, n: int, seed: int, batch: int = 500) -> np.ndarray:
    """float NHWC in [-1, 1]: G in eval mode on N(0, 1) noise keyed on (seed, sample stream,
    batch index), generated `batch` at a time. The first k of n samples do not depend on n."""
    parts = []
    for i, start in enumerate(range(0, n, batch)):
        z = normal_noise(seed, STREAM_SAMPLE, (min(batch, n - start), spec.z_dim), i)
        parts.append(gan.generate(z))
    return np.concatenate(parts)


def sample_grid(checkpoint_path, backend_name: str | None, n: int, seed: int, out) -> Path:
    gan, spec, _ = load_generator(checkpoint_path, backend_name)
    return save_grid(sample_images(gan, spec, n, seed), out)
