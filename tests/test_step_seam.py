"""The one D-call seam of ganbench.step, in float64 across backends.

A transform of D's input, set on the GAN (GANStep.d_transform) and keyed by StepInputs'
transform_args, reaches every D call of a step (real, fake, the penalty's interpolates, the G
update's fakes) in both backends, with no backend code that knows of it. The test transform
scales each sample by its own factor and zeroes some samples outright: with D's biases 0 at init,
exact zeros then reach D's LeakyReLUs, where TensorFlow's float64 max(x, slope * x) once had the
gradient 1 instead of torch's slope.

Tolerance: FP64_STEP_RTOL of test_parity_models (every weight after the steps, relative
Frobenius norm); EFFECT: the least relative change the transform must make to some weight.
"""

import dataclasses

import numpy as np
import pytest

from ganbench.backends import get_backend
from ganbench.step_inputs import PENALTY
from test_parity_models import BATCH, FP64_STEP_RTOL, N_DIS, setup, step_inputs, worst

EFFECT = 1e-3
STEPS = 2


def keyed_scale(ops, images, args):
    """Each sample times its factor in this call's args (written once over the backend's ops)."""
    return images * ops.reshape(args, [-1, 1, 1, 1])


def factors(rng, shape, zeros: bool):
    """Per-sample factors in [0.5, 1.5); zeros: 0 for about a third (exact zeros at D's input)."""
    u = rng.uniform(0, 1, shape)
    return np.where(zeros & (u < 0.35), 0.0, 0.5 + u).astype(np.float32)


def with_transform_args(inputs, s, zeros):
    rng = np.random.default_rng(100 + s)
    return dataclasses.replace(inputs, transform_args=factors(rng, (N_DIS, 3, BATCH), zeros),
                               g_transform_args=factors(rng, (len(inputs.z_g),), zeros))


def train(backend, model, loss, transform, calls=None):
    spec, state, config = setup(model, 32, loss, 0.125)
    gan = get_backend(backend).GAN(spec, state, config, dtype="float64", mode="eager")
    if transform:
        def counted(ops, images, args):
            if calls is not None:
                calls.append(args.shape[0])
            return keyed_scale(ops, images, args)
        gan.d_transform = counted
    for s in range(STEPS):
        inputs = step_inputs(spec, loss, s)
        # no zeros under WGAN-GP: the penalty's gradient norm at a zero input has no gradient
        # (torch takes 0, TensorFlow NaN)
        gan.train_step(with_transform_args(inputs, s, zeros=loss != "wgan-gp") if transform else inputs)
    return gan.export_state()


@pytest.mark.parametrize("model, loss", [("sngan_cnn", "hinge"), ("wgan_gp_resnet", "wgan-gp")])
def test_a_transform_at_the_seam_trains_identically_in_both_backends(model, loss):
    calls = []
    torch_state = train("torch", model, loss, True, calls)
    tf_state = train("tf", model, loss, True)
    error, where = worst(torch_state, tf_state)
    assert error < FP64_STEP_RTOL, where
    # every D call of a step went through the transform: real and fake (and the penalty's
    # interpolates) per D update, and the G update's fakes
    per_update = 3 if loss == "wgan-gp" else 2
    assert len(calls) == STEPS * (N_DIS * per_update + 1)
    plain = train("torch", model, loss, False)
    assert worst(torch_state, plain)[0] > EFFECT


def test_exact_zeros_at_the_leaky_relu_have_torchs_gradient():
    """sngan_cnn's D (LeakyReLU 0.1) on samples zeroed by the transform, its biases 0: the first
    step's bias gradients pass through LeakyReLU at exactly 0 in every layer."""
    spec, state, config = setup("sngan_cnn", 32, "hinge", 0.125)
    assert all(not np.any(array) for name, array in state["nets"]["D"].items() if name.endswith(".bias"))
    states = [train(backend, "sngan_cnn", "hinge", True) for backend in ("torch", "tf")]
    assert worst(*states)[0] < FP64_STEP_RTOL


def test_the_penalty_call_has_its_own_record():
    """The penalty's interpolates read their own row (PENALTY) of transform_args: zeroing only that
    row changes WGAN-GP's training and nothing else would."""
    spec, state, config = setup("wgan_gp_resnet", 32, "wgan-gp", 0.125)
    results = []
    for zero_penalty_row in (False, True):
        gan = get_backend("torch").GAN(spec, state, config, dtype="float64", mode="eager")
        gan.d_transform = keyed_scale
        inputs = step_inputs(spec, "wgan-gp", 0)
        args = np.ones((N_DIS, 3, BATCH), np.float32)
        if zero_penalty_row:
            args[:, PENALTY] = 0.0
        out = gan.train_step(dataclasses.replace(inputs, transform_args=args))
        results.append(out["gp"])
    assert results[0] != pytest.approx(results[1])
