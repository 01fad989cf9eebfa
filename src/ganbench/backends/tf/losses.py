"""The shared GAN losses on TensorFlow tensors, and WGAN-GP's gradient penalty."""

from functools import partial
from types import SimpleNamespace

import tensorflow as tf

from ganbench import losses

OPS = SimpleNamespace(softplus=tf.nn.softplus, relu=tf.nn.relu, mean=tf.reduce_mean, sum=tf.reduce_sum,
                      gram=lambda m: tf.matmul(m, m, transpose_b=True), diag=tf.linalg.diag_part,
                      reshape=tf.reshape, einsum=tf.einsum, layout="NHWC")
d_loss = partial(losses.d_loss, OPS)
g_loss = partial(losses.g_loss, OPS)
ortho_penalty = partial(losses.ortho_penalty, OPS)


def input_gradients(critic, x, scale=None):
    """grad_x sum(critic(x)), per sample. Call it inside the tape that differentiates D's weights:
    the inner tape's gradient is itself differentiable.
    critic: images -> logits, a training call of D (keyed like D's other calls of the step).
    scale: fp16's loss scale, which the inner gradient is taken under and divided by again (the
    recipe torch.amp gives for gradient penalties), so that it does not underflow."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        total = tf.reduce_sum(critic(x))
        if scale is not None:
            total = total * tf.cast(scale, total.dtype)
    grad = tape.gradient(total, x)
    return grad if scale is None else grad / tf.cast(scale, grad.dtype)


def gradient_penalty(critic, real, fake, alpha, scale=None):
    """mean over the batch of (|grad_x D(x_hat)|_2 - 1)^2, x_hat = alpha * real + (1 - alpha) * fake
    with one alpha per sample (Gulrajani et al. 2017, Algorithm 1); critic and scale as in
    input_gradients."""
    alpha = tf.reshape(alpha, [-1, 1, 1, 1])
    grad = input_gradients(critic, alpha * real + (1.0 - alpha) * tf.stop_gradient(fake), scale)
    norm = tf.norm(tf.reshape(grad, [tf.shape(grad)[0], -1]), axis=1)
    return tf.reduce_mean((norm - 1.0) ** 2)
