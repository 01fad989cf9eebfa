"""GAN losses on D's logits [B, 1] (batch means), and WGAN-GP's gradient penalty."""

import tensorflow as tf


def _mean(x):
    return tf.reduce_mean(x)


def d_loss(kind: str, real, fake):
    if kind in ("ns", "minimax"):  # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
        return _mean(tf.nn.softplus(-real)) + _mean(tf.nn.softplus(fake))
    if kind == "hinge":
        return _mean(tf.nn.relu(1.0 - real)) + _mean(tf.nn.relu(1.0 + fake))
    if kind == "wgan-gp":  # the penalty is added by the caller
        return _mean(fake) - _mean(real)
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, fake):
    if kind == "ns":  # -log sigmoid(D(G(z)))
        return _mean(tf.nn.softplus(-fake))
    if kind == "minimax":  # log(1 - sigmoid(D(G(z))))
        return -_mean(tf.nn.softplus(fake))
    if kind in ("hinge", "wgan-gp"):
        return -_mean(fake)
    raise ValueError(f"unknown loss {kind!r}")


def gradient_penalty(critic, real, fake, alpha):
    """mean over the batch of (|grad_x D(x_hat)|_2 - 1)^2, x_hat = alpha * real + (1 - alpha) * fake
    with one alpha per sample (Gulrajani et al. 2017, Algorithm 1). Call it inside the tape that
    differentiates D's weights: the inner tape's gradient is itself differentiable."""
    alpha = tf.reshape(alpha, [-1, 1, 1, 1])
    x_hat = alpha * real + (1.0 - alpha) * tf.stop_gradient(fake)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x_hat)
        total = tf.reduce_sum(critic(x_hat, True))
    grad = tape.gradient(total, x_hat)
    norm = tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1)
    return _mean((norm - 1.0) ** 2)
