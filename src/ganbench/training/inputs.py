"""The inputs of one training step: everything random it consumes, as numpy, drawn in one place.

Every array is keyed on (seed, stream, step), so both backends see the same numbers and resuming
needs nothing but the step counter.
"""

from dataclasses import dataclass

import numpy as np

from ganbench.config import TrainConfig
from ganbench.rng import (
    STREAM_FAKE_LABELS, STREAM_FLIP, STREAM_GP_ALPHA, STREAM_NOISE_D, STREAM_NOISE_G, dropout_step_key, keyed_rng,
    normal_noise,
)


# The parts of an alternating step, in order, as each backend's phase_fns runs them for the bench
STEP_PARTS = ("D's fakes (G forward)", "D updates", "G update")


@dataclass(frozen=True)
class StepInputs:
    """reals: float32 [n_dis, B, H, W, C] in [-1, 1]; z: float32 [n_dis, B, z_dim], the noise of
    each D update's fakes. z_g: float32 [B_g, z_dim], the G update's own noise; None: the G update
    reuses the last D update's fakes (pytorch/examples dcgan). alphas: float32 [n_dis, B] in
    [0, 1], WGAN-GP's interpolation weights. dropout_key: the step's key of D's dropout masks.
    Class-conditional models: labels int64 [n_dis, B] of the reals, fake_labels int64 [n_dis, B]
    of each D update's fakes, g_labels int64 [B_g] of z_g's fakes (else the last fake_labels)."""

    reals: np.ndarray
    z: np.ndarray
    z_g: np.ndarray | None = None
    alphas: np.ndarray | None = None
    dropout_key: int | None = None
    labels: np.ndarray | None = None
    fake_labels: np.ndarray | None = None
    g_labels: np.ndarray | None = None

    @property
    def n_dis(self) -> int:
        return len(self.reals)


def draw_step_inputs(config: TrainConfig, stream, spec, step: int) -> StepInputs:
    """The inputs of G step `step` (0-based): data batches step*n_dis ... step*n_dis + n_dis - 1."""
    batches = [step * config.n_dis + d for d in range(config.n_dis)]
    reals = np.stack([stream.batch(i) for i in batches])
    if config.hflip:
        flip = keyed_rng(config.seed, STREAM_FLIP, step).random(reals.shape[:2]) < 0.5
        reals[flip] = reals[flip][:, :, ::-1]
    alphas = None
    if config.loss == "wgan-gp":
        rng = keyed_rng(config.seed, STREAM_GP_ALPHA, step)
        alphas = rng.uniform(0.0, 1.0, (config.n_dis, config.batch_size)).astype(np.float32)
    labels = fake_labels = g_labels = None
    if spec.conditional:
        labels = np.stack([stream.batch_labels(i) for i in batches])
        rng = keyed_rng(config.seed, STREAM_FAKE_LABELS, step)
        fake_labels = rng.integers(0, spec.num_classes, (config.n_dis, config.batch_size))
        g_labels = rng.integers(0, spec.num_classes, config.batch_size_g) if config.batch_size_g else None
    return StepInputs(
        reals=reals,
        z=normal_noise(config.seed, STREAM_NOISE_D, (config.n_dis, config.batch_size, spec.z_dim), step),
        z_g=(normal_noise(config.seed, STREAM_NOISE_G, (config.batch_size_g, spec.z_dim), step)
             if config.batch_size_g else None),
        alphas=alphas,
        dropout_key=dropout_step_key(config.seed, step) if spec.has_dropout else None,
        labels=labels, fake_labels=fake_labels, g_labels=g_labels,
    )
