"""The inputs of one training step: everything random it consumes, as numpy, drawn in one place.

Every array is keyed on (seed, stream, step), so both backends see the same numbers and resuming
needs nothing but the step counter.
"""

import numpy as np

from ganbench import augment
from ganbench.config import TrainConfig
from ganbench.step_inputs import StepInputs
from ganbench.rng import (
    STREAM_AUGMENT, STREAM_CONSISTENCY, STREAM_FAKE_LABELS, STREAM_FLIP, STREAM_GP_ALPHA, STREAM_NOISE_D, STREAM_NOISE_G, dropout_step_key, keyed_rng,
    normal_noise,
)


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
    transform_args = g_transform_args = None
    policies = augment.parse_policy(config.diffaugment)
    if policies:
        layout = augment.Layout(policies, *spec.image_shape[:2])
        transform_args, g_transform_args = augment.step_args(layout, config.seed, STREAM_AUGMENT, step, config.n_dis,
                                                             config.batch_size, config.batch_size_g or config.batch_size)
    consistency_args = None
    if config.cr:
        consistency_args = augment.consistency_args(config.seed, STREAM_CONSISTENCY, step, config.n_dis,
                                                    config.batch_size, spec.image_shape[1])
    return StepInputs(
        reals=reals,
        z=normal_noise(config.seed, STREAM_NOISE_D, (config.n_dis, config.batch_size, spec.z_dim), step),
        z_g=(normal_noise(config.seed, STREAM_NOISE_G, (config.batch_size_g, spec.z_dim), step)
             if config.batch_size_g else None),
        alphas=alphas,
        dropout_key=dropout_step_key(config.seed, step) if spec.has_dropout else None,
        labels=labels, fake_labels=fake_labels, g_labels=g_labels,
        transform_args=transform_args, g_transform_args=g_transform_args, consistency_args=consistency_args,
        regularise=step % config.reg_every == 0,
    )
