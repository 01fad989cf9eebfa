"""Build a TensorFlow network from a spec, in NHWC, with PyTorch's semantics written out.

No Keras layer is used: Keras' defaults (BN eps 1e-3 and momentum 0.99 with a biased running
variance, 'same' padding, LeakyReLU 0.3, glorot init) all differ from the spec, so each layer is
a few explicit tf ops. Dense weights stay in the canonical (out, in) layout; Reshape and Flatten
transpose the activations so that the flatten order is (C, H, W), as in the canonical layout.
Convolution kernels are stored natively (Conv HWIO, ConvT HWOI) and converted at load/export.
"""

import numpy as np
import tensorflow as tf

from ganbench.archs import spec as S

# canonical OIHW (Conv) / IOHW (ConvT) -> native HWIO / HWOI, and back.
TO_NATIVE = (2, 3, 1, 0)
TO_CANONICAL = (3, 2, 0, 1)


class Layer(tf.Module):
    """Holds a spec layer's variables under canonical names; `perms` maps canonical -> native."""

    def __init__(self, layer, dtype):
        super().__init__(name=layer.name)
        self.spec, self.vars, self.perms = layer, {}, {}
        for name, shape in S.trainable_shapes(layer).items():
            perm = TO_NATIVE if len(shape) == 4 else None  # conv kernels
            self.add(name, shape, dtype, perm=perm)
        self.w = self.vars.get(f"{layer.name}.weight")
        self.b = self.vars.get(f"{layer.name}.bias")

    def add(self, name: str, shape, dtype, trainable=True, perm=None):
        native = tuple(shape[i] for i in perm) if perm else tuple(shape)
        self.vars[name] = tf.Variable(tf.zeros(native, dtype), trainable=trainable, name=name)
        self.perms[name] = perm
        return self.vars[name]

    def add_bias(self, y):
        return tf.nn.bias_add(y, self.b) if self.b is not None else y


def explicit_padding(p: int) -> list:
    return [[0, 0], [p, p], [p, p], [0, 0]]


class Dense(Layer):
    def __call__(self, x, training):
        return self.add_bias(tf.matmul(x, self.w, transpose_b=True))


class Conv(Layer):
    def __call__(self, x, training):
        return self.add_bias(tf.nn.conv2d(x, self.w, self.spec.stride, padding=explicit_padding(self.spec.padding)))


class ConvT(Layer):
    def __call__(self, x, training):
        s, p, k = self.spec.stride, self.spec.padding, self.spec.kernel
        n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
        out_shape = [n, (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k, self.spec.out_channels]
        return self.add_bias(tf.nn.conv2d_transpose(x, self.w, out_shape, s, padding=explicit_padding(p)))


class BatchNorm(Layer):
    """PyTorch BatchNorm2d: biased batch variance normalises, unbiased variance feeds the
    running estimate, running = momentum * batch + (1 - momentum) * running."""

    def __init__(self, layer: S.BatchNorm, dtype):
        super().__init__(layer, dtype)
        self.gamma, self.beta = self.w, self.b
        self.mean = self.add(f"{layer.name}.running_mean", (layer.num_features,), dtype, trainable=False)
        self.var = self.add(f"{layer.name}.running_var", (layer.num_features,), dtype, trainable=False)

    def __call__(self, x, training):
        eps, m = self.spec.eps, self.spec.momentum
        if not training:
            return tf.nn.batch_normalization(x, self.mean, self.var, self.beta, self.gamma, eps)
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), x.dtype)
        self.mean.assign(m * mean + (1.0 - m) * self.mean)
        self.var.assign(m * var * count / (count - 1.0) + (1.0 - m) * self.var)
        return tf.nn.batch_normalization(x, mean, var, self.beta, self.gamma, eps)


def activation(layer: S.Act):
    if layer.kind == "relu":
        return tf.nn.relu
    if layer.kind == "leaky_relu":
        # tf.nn.leaky_relu keeps alpha as a float32 attribute even for float64 tensors;
        # max(x, slope * x) equals it for 0 <= slope < 1 at full precision.
        return lambda x: tf.maximum(x, layer.slope * x)
    if layer.kind == "tanh":
        return tf.math.tanh
    raise TypeError(f"tf backend cannot build {layer!r}")


def reshape_to_nhwc(shape):
    c, h, w = shape
    return lambda x: tf.transpose(tf.reshape(x, [-1, c, h, w]), [0, 2, 3, 1])


def flatten_chw(x):
    """NHWC -> [N, C*H*W] in channel-first order, matching the canonical Dense layout."""
    return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [tf.shape(x)[0], -1])


PARAMETRIC = {S.Dense: Dense, S.Conv: Conv, S.ConvT: ConvT, S.BatchNorm: BatchNorm}


class Network(tf.Module):
    def __init__(self, net: S.Network, dtype=tf.float32):
        super().__init__(name=net.name)
        self.layers, self.calls = [], []
        for layer in net.layers:
            if type(layer) in PARAMETRIC:
                built = PARAMETRIC[type(layer)](layer, dtype)
                self.layers.append(built)
                self.calls.append(built)
            elif isinstance(layer, S.Act):
                self.calls.append(_stateless(activation(layer)))
            elif isinstance(layer, S.Reshape):
                self.calls.append(_stateless(reshape_to_nhwc(layer.shape)))
            elif isinstance(layer, S.Flatten):
                self.calls.append(_stateless(flatten_chw))
            else:
                raise TypeError(f"tf backend cannot build {layer!r}")
        self.variables_by_name = {n: v for built in self.layers for n, v in built.vars.items()}
        self.perms = {n: p for built in self.layers for n, p in built.perms.items()}
        self.trainables = [v for v in self.variables_by_name.values() if v.trainable]
        self.trainable_names = [n for n, v in self.variables_by_name.items() if v.trainable]

    def __call__(self, x, training: bool):
        for call in self.calls:
            x = call(x, training)
        return x

    def to_native(self, name: str, array):
        perm = self.perms[name]
        return np.transpose(array, perm) if perm else np.asarray(array)

    def to_canonical(self, name: str, array):
        perm = self.perms[name]
        return np.ascontiguousarray(np.transpose(array, TO_CANONICAL) if perm else array)

    def load_canonical(self, arrays: dict) -> None:
        for name, var in self.variables_by_name.items():
            value = self.to_native(name, arrays[name])
            if tuple(value.shape) != tuple(var.shape):
                raise ValueError(f"{self.name}.{name}: shape {value.shape}, expected {tuple(var.shape)}")
            var.assign(value.astype(var.dtype.as_numpy_dtype))

    def export_canonical(self) -> dict:
        return {name: self.to_canonical(name, var.numpy()) for name, var in self.variables_by_name.items()}


def _stateless(fn):
    return lambda x, training: fn(x)
