"""R1 and R2, the zero-centred gradient penalties (--r1, --r2, lazy with --reg-every): a numpy
oracle in both backends, float64 training steps equal across backends, and the pairings refused.

Tolerances: LOSS_RTOL (test_losses_gan) for a penalty against numpy; FP64_STEP_RTOL
(test_parity_models) for weights after training steps; EFFECT: the least relative change the
penalties must make to some weight."""

import dataclasses

import numpy as np
import pytest

from ganbench import losses
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from test_losses_gan import LOSS_RTOL, backend_losses
from test_parity_models import FP64_STEP_RTOL, setup, step_inputs, worst

EFFECT = 1e-3


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_zero_centred_penalty_matches_numpy(backend):
    """For D(x) = 0.5 * sum(x^2), grad_x D = x: the penalty is the batch mean of sum(x^2)."""
    backend_module, to, back = backend_losses(backend)
    x = np.random.default_rng(2).uniform(-1, 1, (5, 4, 4, 3))
    if backend == "torch":
        critic = lambda t: 0.5 * (t**2).sum(dim=(1, 2, 3))  # noqa: E731
    else:
        import tensorflow as tf

        critic = lambda t: 0.5 * tf.reduce_sum(t**2, axis=[1, 2, 3])  # noqa: E731
    penalty = losses.zero_centred_penalty(backend_module.OPS, backend_module.input_gradients(critic, to(x)))
    assert back(penalty) == pytest.approx((x**2).sum(axis=(1, 2, 3)).mean(), rel=LOSS_RTOL)


def train(backend, r1, r2, reg_every=1, steps=2):
    spec, state, config = setup("sngan_cnn", 32, "hinge", 0.125)
    config = config.replace(r1=r1, r2=r2, reg_every=reg_every)
    gan = get_backend(backend).GAN(spec, state, config, dtype="float64", mode="eager")
    logged = []
    for s in range(steps):
        inputs = dataclasses.replace(step_inputs(spec, "hinge", s), regularise=s % reg_every == 0)
        logged.append(sorted(k for k in gan.train_step(inputs) if k in ("r1", "r2")))
    return gan.export_state(), logged


def test_r1_and_r2_train_identically_in_both_backends():
    """Lazy, every 2nd step: step 0 adds both penalties (logged), step 1 neither."""
    (torch_state, torch_logged), (tf_state, tf_logged) = (train(b, 1.0, 0.5, reg_every=2) for b in ("torch", "tf"))
    assert torch_logged == tf_logged == [["r1", "r2"], []]
    gap, where = worst(torch_state, tf_state)
    assert gap <= FP64_STEP_RTOL, f"{where} differs by {gap:.2e}"
    assert worst(train("torch", 0.0, 0.0)[0], torch_state)[0] >= EFFECT


@pytest.mark.parametrize("fields", [dict(loss="wgan-gp", r1=1.0), dict(update="simultaneous", r2=1.0),
                                    dict(r1=-1.0), dict(reg_every=0)])
def test_pairings_that_make_no_sense_are_refused(fields):
    with pytest.raises(GanbenchError):
        TrainConfig(**fields).validate()
