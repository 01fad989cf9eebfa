"""Sampling from a checkpoint with either backend, whichever wrote it.

All noise and labels are numpy, keyed on the seed: both backends draw the same samples.
"""

import numpy as np

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.ema import sampling_generator
from ganbench.errors import GanbenchError
from ganbench.images import to_uint8
from ganbench.rng import STREAM_SAMPLE, STREAM_STANDING, STREAM_TRUNCATION, keyed_rng, normal_noise


class Generator:
    """A checkpoint's generator in one backend. Its samples are uint8 NHWC numpy arrays drawn from
    noise keyed on the seed, so both backends (and `ganbench sample`) draw the same images."""

    def __init__(self, gan, spec, meta: dict):
        self.gan, self.spec, self.meta = gan, spec, meta
        self.config = TrainConfig.from_dict(meta["config"])

    backend = property(lambda self: self.gan.backend, doc="torch or tf")
    step = property(lambda self: self.meta["step"], doc="G updates the checkpoint had trained")
    name = property(lambda self: generator_name(self.gan), doc='"ema" (the moving average) or "raw"')
    num_classes = property(lambda self: self.spec.num_classes if self.spec.conditional else 0,
                           doc="classes of a conditional G; 0 for an unconditional one")

    def sample(self, n: int = 64, seed: int = 0, label: int | None = None, truncation: float = 0.0) -> np.ndarray:
        """n images (all of class `label`; else classes 0, 1, ..., K-1 in turn for a conditional G)."""
        labels = sample_labels(self.spec, n, label)
        return to_uint8(sample_images(self.gan, self.spec, n, seed, labels=labels, truncation=truncation))

    def sample_classes(self, per_class: int = 10, seed: int = 0, truncation: float = 0.0) -> np.ndarray:
        """A conditional G's images in class order: `per_class` of class 0, then of class 1, ..."""
        if not self.spec.conditional:
            raise GanbenchError(f"{self.spec.arch} is not class-conditional: --classes needs a conditional model")
        labels = np.repeat(np.arange(self.spec.num_classes), per_class)
        return to_uint8(sample_images(self.gan, self.spec, len(labels), seed, labels=labels, truncation=truncation))

    def interpolate(self, steps: int = 10, seed: int = 0, label: int | None = None,
                    truncation: float = 0.0) -> np.ndarray:
        """`steps` images along the spherical path between two latent points of the seed (the first
        two samples `sample` draws); a conditional G draws class `label` (default 0)."""
        ends = sample_noise(self.spec, 2, seed, 0, truncation)
        z = slerp(ends[0], ends[1], np.linspace(0.0, 1.0, steps))
        labels = sample_labels(self.spec, steps, 0 if label is None and self.spec.conditional else label)
        return to_uint8(self.gan.generate(z, labels=labels))


def load_generator(checkpoint_path, backend: str | None = None, use_ema: bool = True,
                   standing_stats: int = 0, precision: str | None = None) -> Generator:
    """A checkpoint's generator (a .safetensors file, or a run directory: its latest), in `backend`
    (default: the one that trained it); weights only, no optimiser state. It samples with G's
    moving average when the checkpoint has one, unless use_ema is False; standing_stats > 0: on
    BatchNorm statistics averaged over that many training-mode batches (ganbench.ema); precision:
    fp32, bf16 or fp16 (ganbench.precision; default: the one it trained in)."""
    state, meta, _, spec = checkpoint.load(checkpoint_path)
    config = TrainConfig.from_dict(meta["config"]).replace(devices=1)  # sampling is not data-parallel
    if precision is not None:
        config = config.replace(precision=precision).validate()
    gan = get_backend(backend or config.backend).GAN(spec, {"nets": state["nets"]}, config)
    gan.use_ema = use_ema
    if standing_stats:
        gan.standing_stats(standing_batches(spec, standing_stats, config.batch_size, config.seed))
    return Generator(gan, spec, {**meta, "config": config.to_dict()})


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
