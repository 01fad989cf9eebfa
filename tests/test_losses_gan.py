"""Numpy oracles for the hinge, minimax, least-squares, relativistic-pairing and WGAN-GP losses and the gradient penalty, in both
backends; golden values of a first WGAN-GP and hinge step pin them down over time."""

import numpy as np
import pytest

from ganbench.backends import get_backend
from ganbench.config import LOSSES

LOSS_RTOL = 1e-12  # float64 loss values against numpy
rng = np.random.default_rng(0)
REAL, FAKE = rng.standard_normal((16, 1)) * 2, rng.standard_normal((16, 1)) * 2 - 1


def softplus(x):
    return np.logaddexp(0.0, x)


NUMPY_D = {
    "ns": lambda r, f: softplus(-r).mean() + softplus(f).mean(),
    "minimax": lambda r, f: softplus(-r).mean() + softplus(f).mean(),
    "hinge": lambda r, f: np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean(),
    "wgan-gp": lambda r, f: f.mean() - r.mean(),
    "ls": lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
    "rpgan": lambda r, f: softplus(f - r).mean(),
}
NUMPY_G = {  # G's loss on D's logits of the fakes, and of the reals paired with them (rpgan)
    "ns": lambda f, r: softplus(-f).mean(),
    "minimax": lambda f, r: -softplus(f).mean(),
    "hinge": lambda f, r: -f.mean(),
    "wgan-gp": lambda f, r: -f.mean(),
    "ls": lambda f, r: 0.5 * ((f - 1) ** 2).mean(),
    "rpgan": lambda f, r: softplus(r - f).mean(),
}


def backend_losses(name):
    get_backend(name)  # imports the framework in the right order (triton before TensorFlow)
    if name == "torch":
        import torch

        from ganbench.backends.torch import losses

        return losses, torch.from_numpy, lambda t: t.detach().numpy()
    import tensorflow as tf

    from ganbench.backends.tf import losses

    return losses, tf.constant, lambda t: t.numpy()


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_losses_match_numpy(backend, kind):
    losses, to, back = backend_losses(backend)
    assert back(losses.d_loss(kind, to(REAL), to(FAKE))) == pytest.approx(NUMPY_D[kind](REAL, FAKE), rel=LOSS_RTOL)
    assert back(losses.g_loss(kind, to(FAKE), to(REAL))) == pytest.approx(NUMPY_G[kind](FAKE, REAL), rel=LOSS_RTOL)


def quadratic_critic_penalty(real, fake, alpha):
    """For D(x) = 0.5 * sum(x^2): grad D(x_hat) = x_hat, so the penalty is mean (|x_hat| - 1)^2."""
    x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
    return ((np.sqrt((x_hat**2).reshape(len(x_hat), -1).sum(1)) - 1) ** 2).mean()


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_gradient_penalty_matches_numpy(backend):
    losses, to, back = backend_losses(backend)
    r = np.random.default_rng(1)
    real, fake = r.uniform(-1, 1, (5, 4, 4, 3)) * 0.2, r.uniform(-1, 1, (5, 4, 4, 3)) * 0.2
    alpha = r.uniform(0, 1, 5)
    expected = quadratic_critic_penalty(real, fake, alpha)
    if backend == "torch":
        critic = lambda x: 0.5 * (x**2).sum(dim=(1, 2, 3))  # noqa: E731
    else:
        import tensorflow as tf

        critic = lambda x: 0.5 * tf.reduce_sum(x**2, axis=[1, 2, 3])  # noqa: E731
    assert back(losses.gradient_penalty(critic, to(real), to(fake), to(alpha))) == pytest.approx(expected, rel=LOSS_RTOL)


def test_gradient_penalty_gradient_reaches_the_critic_weights():
    """The penalty is differentiable in D's weights (double backward): for D(x) = s * sum(x),
    |grad| = |s| sqrt(n), so d/ds (|s| sqrt(n) - 1)^2 = 2 (|s| sqrt(n) - 1) sqrt(n) for s > 0."""
    import torch

    from ganbench.backends.torch import losses

    s = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    x = torch.zeros((2, 3, 4, 4), dtype=torch.float64)
    gp = losses.gradient_penalty(lambda t: s * t.sum(dim=(1, 2, 3)), x, x, torch.tensor([0.2, 0.7], dtype=torch.float64))
    gp.backward()
    n = 3 * 4 * 4
    assert s.grad.item() == pytest.approx(2 * (0.3 * np.sqrt(n) - 1) * np.sqrt(n), rel=1e-12)


# Golden first-step losses: sngan_resnet (hinge) and wgan_gp_resnet (wgan-gp), width 0.125, init
# seed 0, the inputs of tests/test_parity_models.py step 0, float64. Both backends give these.
GOLDEN = {
    ("sngan_resnet", "hinge"): {"d_loss": 3.9696008564824896, "g_loss": 1.080859628098162},
    ("wgan_gp_resnet", "wgan-gp"): {"d_loss": 8.72988290330817, "gp": 0.895419465113283, "g_loss": 0.15397877171766167},
}


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("model, loss", list(GOLDEN))
def test_golden_first_step(backend, model, loss):
    from test_parity_models import setup, step_inputs

    spec, state, hp = setup(model, 32, loss, 0.125)
    gan = get_backend(backend).GAN(spec, state, hp, device="cpu", dtype="float64")
    result = gan.train_step(step_inputs(spec, loss, 0))
    assert result == pytest.approx(GOLDEN[(model, loss)], rel=1e-9)
