"""Numpy oracles for the non-saturating loss, BatchNorm running statistics and Adam."""

import numpy as np
import pytest

from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.rng import normal_noise
from ganbench.step_inputs import StepInputs

HP = TrainConfig()


def softplus(x):
    return np.logaddexp(0.0, x)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_nonsaturating_losses_match_numpy(backend, spec, init_state, real_batches):
    module = get_backend(backend)
    make = lambda state: module.GAN(spec, state, HP, device="cpu", dtype="float64")  # noqa: E731
    real = real_batches[0, 0]
    z = normal_noise(0, 5, (1, 64, 100))
    fake = make(init_state).generate(z[0], training=True)
    probe = make(init_state)
    real_logits = probe.discriminate(real, training=True)
    fake_logits = probe.discriminate(fake, training=True)

    trained = make(init_state)
    losses = trained.train_step(StepInputs(real_batches[0], z))
    expected_d = softplus(-real_logits).mean() + softplus(fake_logits).mean()
    assert losses["d_loss"] == pytest.approx(expected_d, rel=1e-10)

    # The G loss is scored by the updated D on the pre-update fake batch.
    after = trained.export_state()
    updated_d = make({"nets": {"G": init_state["nets"]["G"], "D": after["nets"]["D"]}})
    expected_g = softplus(-updated_d.discriminate(fake, training=True)).mean()
    assert losses["g_loss"] == pytest.approx(expected_g, rel=1e-10)
    assert losses["d_loss"] == pytest.approx(2.9478805022790, rel=1e-6)  # golden value: init seed 0, MNIST batch 0
    # (one float64 forward: every CPU computes it to ~1e-15, far inside rel 1e-6)


def test_tf_adam_matches_numpy_torch_formula():
    import tensorflow as tf

    from ganbench.backends.tf.step import Adam

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(50)
    grads = rng.standard_normal((4, 50)) * np.array([1e-9, 1e-3, 1.0, 10.0])[:, None]
    var = tf.Variable(p0)
    opt = Adam([var], lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, dtype=tf.float64)
    p, m, v = p0.copy(), np.zeros(50), np.zeros(50)
    for t, g in enumerate(grads, start=1):
        opt.apply([tf.constant(g)], [var])
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        # torch.optim.Adam: eps added to the bias-corrected sqrt(v)
        p = p - 2e-4 / (1 - 0.5**t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8)
        np.testing.assert_allclose(var.numpy(), p, rtol=1e-13, atol=1e-17)


def test_tf_batchnorm_matches_numpy_torch_semantics():
    import tensorflow as tf

    from ganbench.archs.spec import BatchNorm
    from ganbench.backends.tf.nets import BatchNorm as TfBatchNorm

    layer = TfBatchNorm(BatchNorm("bn", 3, eps=1e-5, momentum=0.1), tf.float64)
    layer.gamma.assign([1.0, 2.0, 0.5])
    layer.beta.assign([0.0, 1.0, -1.0])
    layer.var.assign([1.0, 1.0, 1.0])
    x = np.random.default_rng(2).standard_normal((4, 5, 5, 3)) * 3 + 1
    y = layer(tf.constant(x), training=True).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0], rtol=1e-12)
    np.testing.assert_allclose(layer.mean.numpy(), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.var.numpy(), 0.9 + 0.1 * x.var(axis=(0, 1, 2), ddof=1), rtol=1e-12)
