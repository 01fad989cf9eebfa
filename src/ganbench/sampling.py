"""Sampling from a checkpoint with either backend, whichever wrote it.

All noise and labels are numpy, keyed on the seed: both backends draw the same samples.
"""

from pathlib import Path

import numpy as np

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.ema import sampling_generator
from ganbench.errors import GanbenchError
from ganbench.images import save_grid, save_png, make_grid, to_uint8
from ganbench.rng import STREAM_SAMPLE, STREAM_STANDING, STREAM_TRUNCATION, keyed_rng, normal_noise


def load_generator(checkpoint_path, backend_name: str | None = None, use_ema: bool = True, standing_stats: int = 0):
    """A backend GAN restored from a checkpoint (weights only; optimiser state is not needed).
    Without a backend name, the backend that trained it (`gan.backend` says which). It samples
    with G's moving average when the checkpoint has one, unless use_ema is False; standing_stats
    > 0: on BatchNorm statistics averaged over that many training-mode batches (ganbench.ema)."""
    state, meta, _, spec = checkpoint.load(checkpoint_path)
    config = TrainConfig.from_dict(meta["config"])
    gan = get_backend(backend_name or config.backend).GAN(spec, {"nets": state["nets"]}, config)
    gan.use_ema = use_ema
    if standing_stats:
        gan.standing_stats(standing_batches(spec, standing_stats, config.batch_size, config.seed))
    return gan, spec, meta


def standing_batches(spec, count: int, batch_size: int, seed: int):
    """(z, labels) of each standing-statistics batch: noise keyed on (seed, standing stream, k),
    balanced labels for a conditional G; the same in every backend."""
    for k in range(count):
        yield normal_noise(seed, STREAM_STANDING, (batch_size, spec.z_dim), k), sample_labels(spec, batch_size)


def generator_name(gan) -> str:
    """Which generator samples: "ema" (G's moving average, BN on its averaged statistics) or "raw"."""
    return "ema" if sampling_generator(gan) is gan.G_ema else "raw"


def sample_labels(spec, n: int, label: int | None = None) -> np.ndarray | None:
    """Class labels of n samples of a conditional G: all `label`, else 0, 1, ..., K-1, 0, 1, ...
    (balanced, and the same for every n); None for an unconditional G."""
    if not spec.conditional:
        if label is not None:
            raise GanbenchError(f"{spec.arch} is not class-conditional: it takes no class")
        return None
    if label is not None and not 0 <= label < spec.num_classes:
        raise GanbenchError(f"class {label} is out of range 0..{spec.num_classes - 1}")
    return np.full(n, label, np.int64) if label is not None else np.arange(n, dtype=np.int64) % spec.num_classes


def truncate(z: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """The truncation trick (Brock et al. 2019): every element outside [-threshold, threshold]
    redrawn from N(0, 1) until it falls inside (scipy's truncnorm, as StudioGAN samples it)."""
    z = z.copy()
    outside = np.abs(z) > threshold
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum())).astype(z.dtype)
        outside = np.abs(z) > threshold
    return z


def sample_noise(spec, n: int, seed: int, index: int, truncation: float = 0.0) -> np.ndarray:
    """float32 [n, z_dim] N(0, 1) noise keyed on (seed, sample stream, index), truncated when
    truncation > 0 (redraws keyed on the same)."""
    z = normal_noise(seed, STREAM_SAMPLE, (n, spec.z_dim), index)
    return truncate(z, truncation, keyed_rng(seed, STREAM_TRUNCATION, index)) if truncation > 0 else z


def sample_images(gan, spec, n: int, seed: int, batch: int = 500, labels: np.ndarray | None = None,
                  truncation: float = 0.0) -> np.ndarray:
    """float NHWC in [-1, 1]: G in eval mode on noise keyed on (seed, batch index), generated
    `batch` at a time, with `labels` (default: sample_labels) for a conditional G. The first k of
    n samples do not depend on n."""
    labels = sample_labels(spec, n) if labels is None else labels
    parts = []
    for i, start in enumerate(range(0, n, batch)):
        size = min(batch, n - start)
        z = sample_noise(spec, size, seed, i, truncation)
        parts.append(gan.generate(z, labels=None if labels is None else labels[start:start + size]))
    return np.concatenate(parts)


def sample_grid(checkpoint_path, backend_name: str | None, n: int, seed: int, out, use_ema: bool = True,
                label: int | None = None, truncation: float = 0.0, standing_stats: int = 0) -> Path:
    """A PNG grid of n samples (all of class `label`, for a conditional G)."""
    gan, spec, _ = load_generator(checkpoint_path, backend_name, use_ema, standing_stats)
    return save_grid(sample_images(gan, spec, n, seed, labels=sample_labels(spec, n, label), truncation=truncation), out)


def class_grid(checkpoint_path, backend_name: str | None, per_class: int, seed: int, out, use_ema: bool = True,
               truncation: float = 0.0, standing_stats: int = 0) -> Path:
    """One row per class of a conditional G, `per_class` samples each (row k: class k)."""
    gan, spec, _ = load_generator(checkpoint_path, backend_name, use_ema, standing_stats)
    if not spec.conditional:
        raise GanbenchError(f"{spec.arch} is not class-conditional: --classes needs a conditional model")
    labels = np.repeat(np.arange(spec.num_classes), per_class)
    images = sample_images(gan, spec, len(labels), seed, labels=labels, truncation=truncation)
    return save_grid(images, out, ncols=per_class)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between two latent vectors (Shoemake 1985; White 2016 for GANs),
    [len(t), z_dim]; linear where they are (anti)parallel."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = t[:, None]
    if np.sin(omega) < 1e-8:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)).astype(np.float32)


def interpolation(checkpoint_path, backend_name: str | None, steps: int, seed: int, out, use_ema: bool = True,
                  label: int | None = None, truncation: float = 0.0, standing_stats: int = 0) -> Path:
    """A strip (PNG) or an animation (GIF, by the suffix of `out`) of G along the spherical path
    between two latent points of the seed (the first two samples `sample` draws)."""
    gan, spec, _ = load_generator(checkpoint_path, backend_name, use_ema, standing_stats)
    ends = sample_noise(spec, 2, seed, 0, truncation)
    z = slerp(ends[0], ends[1], np.linspace(0.0, 1.0, steps))
    labels = sample_labels(spec, steps, 0 if label is None and spec.conditional else label)
    frames = to_uint8(gan.generate(z, labels=labels))
    if Path(out).suffix.lower() == ".gif":
        return save_gif(frames, out)
    return save_png(make_grid(frames, ncols=steps), out)


def save_gif(frames: np.ndarray, path, milliseconds: int = 120) -> Path:
    """uint8 NHWC frames -> a looping GIF, written atomically."""
    import io

    from PIL import Image

    from ganbench.fileio import atomic_write

    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=milliseconds, loop=0)
    return atomic_write(path, buffer.getvalue())
