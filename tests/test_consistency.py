"""Balanced consistency regularisation (--cr): a numpy oracle of the penalty in both backends, its
T (a keyed translation) against the numpy translation of test_augment, float64 training steps
identical across backends (alone, and beside DiffAugment and WGAN-GP's penalty), and the option as
a user gives it.

Tolerances: LOSS_RTOL (test_losses_gan) for the penalty against numpy; AUGMENT_RTOL (test_augment)
for T; FP64_STEP_RTOL (test_parity_models) for weights after training steps; EFFECT: the least
relative change the regularisation must make to some weight."""

import dataclasses

import numpy as np
import pytest

from ganbench import augment, losses
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.rng import STREAM_AUGMENT, STREAM_CONSISTENCY, keyed_rng
from ganbench.step_inputs import FAKE, REAL
from test_augment import AUGMENT_RTOL, backend_transform, numpy_diffaugment
from test_losses_gan import LOSS_RTOL, backend_losses
from test_parity_models import BATCH, FP64_STEP_RTOL, N_DIS, setup, step_inputs, worst

EFFECT = 1e-3


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_consistency_penalty_matches_numpy(backend):
    backend_module, to, back = backend_losses(backend)
    rng = np.random.default_rng(5)
    logits, moved = rng.standard_normal((16, 1)), rng.standard_normal((16, 1))
    got = losses.consistency_penalty(backend_module.OPS, to(logits), to(moved))
    assert back(got) == pytest.approx(((logits - moved) ** 2).mean(), rel=LOSS_RTOL)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_its_transform_is_the_keyed_translation(backend):
    """T of D update 1's fakes at step 3 is the numpy translation drawn from the same key, in the
    same order (all reals' and fakes' rows of all D updates at once)."""
    size, channels = 16, 3
    args = augment.consistency_args(7, STREAM_CONSISTENCY, 3, N_DIS, BATCH, size)
    assert args.shape[:3] == (N_DIS, 2, BATCH)
    images = np.random.default_rng(0).uniform(-1, 1, (N_DIS * 2 * BATCH, size, size, channels))
    expected = numpy_diffaugment(images, ("translation",), keyed_rng(7, STREAM_CONSISTENCY, 3))
    expected = expected.reshape(N_DIS, 2, BATCH, size, size, channels)[1, FAKE]
    layout = augment.Layout(augment.CONSISTENCY_POLICIES, channels, size)
    got = backend_transform(backend, images.reshape(N_DIS, 2, BATCH, size, size, channels)[1, FAKE], layout,
                            args[1, FAKE].astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=AUGMENT_RTOL, atol=1e-15)
    assert not np.array_equal(args[0, REAL], args[0, FAKE])
    np.testing.assert_array_equal(args, augment.consistency_args(7, STREAM_CONSISTENCY, 3, N_DIS, BATCH, size))


def train(backend, model, loss, cr, policies=""):
    spec, state, config = setup(model, 32, loss, 0.125)
    config = config.replace(cr=cr, diffaugment=policies)
    gan = get_backend(backend).GAN(spec, state, config, dtype="float64", mode="eager")
    layout = augment.Layout(augment.parse_policy(policies), *spec.image_shape[:2])
    for s in range(2):
        inputs = step_inputs(spec, loss, s)
        moves = augment.consistency_args(0, STREAM_CONSISTENCY, s, N_DIS, BATCH, spec.image_shape[1]) if cr else None
        inputs = dataclasses.replace(inputs, consistency_args=moves)
        if policies:
            d_args, g_args = augment.step_args(layout, 0, STREAM_AUGMENT, s, N_DIS, BATCH, len(inputs.z_g))
            inputs = dataclasses.replace(inputs, transform_args=d_args, g_transform_args=g_args)
        out = gan.train_step(inputs)
        assert ("cr" in out) == bool(cr)
        assert out.get("cr", 1.0) > 0.0
    return gan.export_state()


@pytest.mark.parametrize("model,loss,policies", [("sngan_cnn", "ns", ""), ("sngan_cnn", "ls", "color,cutout"),
                                                 ("wgan_gp_resnet", "wgan-gp", "")])
def test_training_with_cr_is_identical_in_both_backends(model, loss, policies):
    """Under WGAN-GP D's last bias has no gradient (mean(fake) - mean(real) and the penalty do not
    see it, and bCR's difference cancels it): Adam turns bCR's round-off there (1e-17) into steps
    of the learning rate whose sign differs between frameworks. That one tensor is left out."""
    states = [train(b, model, loss, cr, policies) for b, cr in (("torch", 10.0), ("tf", 10.0), ("torch", 0.0))]
    if loss == "wgan-gp":
        for state in states:
            del state["nets"]["D"]["fc.bias"]
    gap, where = worst(states[0], states[1])
    assert gap <= FP64_STEP_RTOL, f"{model}: {where} differs by {gap:.2e}"
    assert worst(states[2], states[0])[0] >= EFFECT


def test_cr_is_refused_where_it_has_no_d_update():
    with pytest.raises(GanbenchError, match="cr needs update 'alternating'"):
        TrainConfig(cr=10.0, update="simultaneous").validate()
    with pytest.raises(GanbenchError, match="cr must be 0 \\(off\\) or positive, got -1.0"):
        TrainConfig(cr=-1.0).validate()
