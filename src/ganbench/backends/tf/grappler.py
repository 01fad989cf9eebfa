"""Ops written so that grappler's remapper keeps fusing TensorFlow's training graphs: the same
values and gradients as TensorFlow's own ops, with gradients that read what the fusion leaves."""

import tensorflow as tf


def leaky_relu_grad_from_output(slope: float):
    """tf.nn.leaky_relu whose gradient reads its output instead of its input (the same mask, as
    y > 0 exactly where x > 0 for a slope > 0). TensorFlow's own gradient reads the input, the
    BiasAdd that grappler's remapper folds into a fused conv + bias + LeakyReLU: the remapper then
    fails on the whole training graph ("fanout ... LeakyReluGrad exist for missing node BiasAdd")
    and fuses nothing; this way it fuses them, as ReluGrad (which reads ReLU's output) lets it."""

    @tf.autograph.experimental.do_not_convert  # autograph would convert the gradient's lambda
    @tf.custom_gradient
    def leaky_relu(x):
        y = tf.nn.leaky_relu(x, slope)
        return y, lambda dy: tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=slope)

    return leaky_relu


@tf.autograph.experimental.do_not_convert  # autograph would convert the gradient's lambda
@tf.custom_gradient
def relu_beside_a_shortcut(x):
    """ReLU at the head of a residual block's main path, written as max(x, 0) with ReLU's gradient
    (dy where y > 0). When x is the previous block's sum, a Relu op there lets grappler's remapper
    fuse that sum into the convolution before it although the shortcut still reads it, and the
    remapper then fails on the whole graph ("fanout 'Relu_N' exist for missing node 'add_M'")."""
    y = tf.maximum(x, tf.zeros((), x.dtype))
    return y, lambda dy: tf.raw_ops.ReluGrad(gradients=dy, features=y)
