"""Build a TensorFlow network from a spec, in NHWC, with PyTorch's semantics written out.

No Keras layer is used: Keras' defaults (BN eps 1e-3 and momentum 0.99 with a biased running
variance, 'same' padding, LeakyReLU 0.3, glorot init) all differ from the spec, so each layer is
a few explicit tf ops. Dense weights stay in the canonical (out, in) layout; Reshape and Flatten
transpose the activations so that the flatten order is (C, H, W), as in the canonical layout.
Convolution kernels are stored natively (Conv HWIO, ConvT HWOI) and converted at load/export.
Spectral norm is written out too: Keras' SpectralNormalization overwrites the kernel, passes no
gradient through sigma and flattens another matrix.
"""

import threading
from functools import partial

import numpy as np
import tensorflow as tf

from ganbench.archs import spec as S
from ganbench.backends.tf.convolutions import convolution, transposed_from_a_pixel
from ganbench.backends.tf.dropout import Dropout
from ganbench.backends.tf.grappler import leaky_relu_grad_from_output, relu_beside_a_shortcut

# canonical OIHW (Conv) / IOHW (ConvT) -> native HWIO / HWOI, and back.
TO_NATIVE = (2, 3, 1, 0)
TO_CANONICAL = (3, 2, 0, 1)


def variable(value, **kwargs) -> tf.Variable:
    """A variable of ganbench's state. Every replica of a data-parallel step writes the same value
    to it (the gradients are all-reduced first), so under MirroredStrategy (several replicas in one
    process, the variables mirrored on each device) the first replica's write serves all."""
    return tf.Variable(value, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA, **kwargs)


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
        self.add_sn_vectors(layer, dtype)

    def add(self, name: str, shape, dtype, trainable=True, perm=None):
        native = tuple(shape[i] for i in perm) if perm else tuple(shape)
        self.vars[name] = variable(tf.zeros(native, dtype), trainable=trainable, name=name)
        self.perms[name] = perm
        return self.vars[name]

    def add_bias(self, y):
        return tf.nn.bias_add(y, self.b) if self.b is not None else y

    def weight(self, training):
        """The weight to compute with: w, or w / sigma(w) under spectral norm (PyTorch's semantics:
        one power iteration per training forward on the canonical (out, in*k*k) matrix, u and v
        persistent, the gradient flowing through sigma via w only)."""
        if not S.spectrally_normalized(self.spec):
            return self.w
        u, v = self.vars[f"{self.spec.name}.sn_u"], self.vars[f"{self.spec.name}.sn_v"]
        matrix, eps = self.canonical_matrix(), S.sn_eps(self.spec)
        if training:
            frozen = tf.stop_gradient(matrix)
            u_new = _normalize(tf.linalg.matvec(frozen, v), eps)
            v.assign(_normalize(tf.linalg.matvec(frozen, u_new, transpose_a=True), eps))
            u.assign(u_new)
        sigma = tf.tensordot(tf.stop_gradient(u), tf.linalg.matvec(matrix, tf.stop_gradient(v)), 1)
        return self.w / sigma

    def canonical_matrix(self):
        w = self.w if self.w.shape.rank == 2 else tf.transpose(self.w, TO_CANONICAL)
        return tf.reshape(w, [w.shape[0], -1])

    def add_sn_vectors(self, layer, dtype):
        if S.spectrally_normalized(layer):
            rows, cols = S.sn_matrix_shape(layer)
            self.add(f"{layer.name}.sn_u", (rows,), dtype, trainable=False)
            self.add(f"{layer.name}.sn_v", (cols,), dtype, trainable=False)


def _normalize(x, eps: float):
    return x / tf.maximum(tf.norm(x), eps)


class LowPrecision(Layer):
    """The layers that compute in the run's precision (ganbench.precision): input, weight and bias
    cast to `compute_dtype`, the result left in it. None: as they are."""

    compute_dtype = None

    def compute(self, op, x, w):
        low = self.compute_dtype
        if low is None:
            return self.add_bias(op(x, w))
        y = op(tf.cast(x, low), tf.cast(w, low))
        return tf.nn.bias_add(y, tf.cast(self.b, low)) if self.b is not None else y


def widened(x, dtype):
    """x in `dtype` (a weight's or a network input's): where the precision rule leaves
    low-precision results (ganbench.precision)."""
    return tf.cast(x, dtype)


class Dense(LowPrecision):
    def __call__(self, x, training):
        return self.compute(partial(tf.matmul, transpose_b=True), x, self.weight(training))


class Conv(LowPrecision):
    def __call__(self, x, training):
        return self.compute(partial(convolution, self.spec, self.compute_dtype), x, self.weight(training))


class ConvT(LowPrecision):
    def __call__(self, x, training):
        if x.shape[1:3] == (1, 1) and self.spec.pads == (0, 0):
            return self.compute(transposed_from_a_pixel, x, self.w)
        return self.compute(partial(convolution, self.spec, self.compute_dtype), x, self.w)


class BatchNorm(Layer):
    """PyTorch BatchNorm2d: biased batch variance normalises, unbiased variance feeds the
    running estimate, running = momentum * batch + (1 - momentum) * running."""

    # while a data-parallel step is traced, the replicas to normalise over (global statistics);
    # per thread: MirroredStrategy traces each local replica in its own thread
    sync = threading.local()

    def __init__(self, layer: S.BatchNorm, dtype):
        super().__init__(layer, dtype)
        self.gamma, self.beta = self.w, self.b  # None without affine
        self.mean = self.add(f"{layer.name}.running_mean", (layer.num_features,), dtype, trainable=False)
        self.var = self.add(f"{layer.name}.running_var", (layer.num_features,), dtype, trainable=False)
        self.momentum = layer.momentum  # changed only while standing statistics accumulate

    def __call__(self, x, training):
        """Training in float32 or lower runs in TensorFlow's fused kernel, as Keras' BatchNorm and
        PyTorch's do; float64 (the parity proofs) and the synchronised form run the two-pass
        formula. A low-precision x is normalised with float32 statistics and arithmetic, the
        result returned in x's dtype, as the torch backend's mixed-dtype kernel does."""
        if training and x.dtype != tf.float64 and getattr(BatchNorm.sync, "replicas", 1) == 1:
            return self._fused(x)
        return tf.cast(self._normalised(widened(x, self.mean.dtype), training), x.dtype)

    def _fused(self, x):
        """Training in TensorFlow's fused kernel (no float64 form), which reads a low-precision x
        as it is and accumulates in float32, and returns the unbiased batch variance: faster than
        the two-pass formula in float32 and than casting x to float32 and back in bf16
        (benchmarks/README.md). (N, F) runs as (N, 1, 1, F)."""
        features = x.shape[-1]
        gamma = tf.ones([features]) if self.gamma is None else self.gamma
        beta = tf.zeros([features]) if self.beta is None else self.beta
        y, mean, unbiased_var = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, [-1, 1, 1, features]) if x.shape.rank == 2 else x, gamma, beta,
            epsilon=self.spec.eps, is_training=True)
        m = self.momentum
        self.mean.assign(m * mean + (1.0 - m) * self.mean)
        self.var.assign(m * unbiased_var + (1.0 - m) * self.var)
        return tf.reshape(y, tf.shape(x)) if x.shape.rank == 2 else y

    def _normalised(self, x, training):
        eps, m = self.spec.eps, self.momentum
        if not training:
            return tf.nn.batch_normalization(x, self.mean, self.var, self.beta, self.gamma, eps)
        axes = list(range(x.shape.rank - 1))  # per channel of NHWC, or per feature of (N, F)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        replicas = getattr(BatchNorm.sync, "replicas", 1)
        if replicas > 1:  # two passes over the global batch, as the torch backend's
            from ganbench.backends.tf.distributed import replica_sum

            count = count * replicas
            mean = replica_sum(tf.reduce_sum(x, axes)) / count
            var = replica_sum(tf.reduce_sum(tf.square(x - mean), axes)) / count
        else:
            mean, var = tf.nn.moments(x, axes=axes)
        self.mean.assign(m * mean + (1.0 - m) * self.mean)
        self.var.assign(m * var * count / (count - 1.0) + (1.0 - m) * self.var)
        return tf.nn.batch_normalization(x, mean, var, self.beta, self.gamma, eps)


class EmbeddingTable(Layer):
    """The weight [num_classes, dim] of a class embedding (spectrally normalised when the spec says)."""

    def lookup(self, labels, training):
        return tf.gather(self.weight(training), labels)


class ProjectionCall:
    """sum(embedding(labels) * h) over features: [B, dim] -> [B, 1] (the context's labels)."""

    reads_context = True

    def __init__(self, embedding: EmbeddingTable):
        self.embedding = embedding

    def __call__(self, h, training, context):
        rows = self.embedding.lookup(context["labels"], training)
        return tf.reduce_sum(rows * widened(h, rows.dtype), axis=1, keepdims=True)


class CondBatchNormCall:
    """BatchNorm without affine, then x * (1 + gain(c)) + bias(c), c = context[cond]; NHWC."""

    reads_context = True

    def __init__(self, bn, gain, bias, cond: str):
        self.bn, self.gain, self.bias, self.cond = bn, gain, bias, cond

    def __call__(self, x, training, context):
        c, normed = context[self.cond], self.bn(x, training)
        # gain and bias in normed's dtype: float32 where x is (after self-attention), as PyTorch's
        # type promotion gives
        gain, bias = (widened(f(c, training), normed.dtype)[:, None, None, :] for f in (self.gain, self.bias))
        return normed * (1.0 + gain) + bias


class SelfAttentionCall:
    """SAGAN's self-attention, NHWC (positions in the same row-major order as the torch backend)."""

    def __init__(self, theta, phi, g, o, gamma_layer: Layer):
        self.theta, self.phi, self.g, self.o = theta, phi, g, o
        self.gamma = gamma_layer.vars[f"{gamma_layer.spec.name}.gamma"]

    def __call__(self, x, training):
        """The products, the softmax and the sum with x in gamma's dtype (float32 under bf16/fp16)."""
        n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
        positions = lambda t: tf.reshape(widened(t, self.gamma.dtype), [n, -1, t.shape[-1]])  # noqa: E731
        theta = positions(self.theta(x, training))                                  # [B, HW, C/8]
        phi = positions(max_pool(self.phi(x, training)))                            # [B, HW/4, C/8]
        attention = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True), axis=-1)  # [B, HW, HW/4]
        g = positions(max_pool(self.g(x, training)))                                # [B, HW/4, C/2]
        out = tf.reshape(tf.matmul(attention, g), [n, h, w, g.shape[-1]])
        return widened(x, self.gamma.dtype) + self.gamma * widened(self.o(out, training), self.gamma.dtype)


def max_pool(x):
    return tf.nn.max_pool2d(x, 2, 2, "VALID")


def activation(layer: S.Act):
    if layer.kind == "relu":
        return tf.nn.relu
    if layer.kind == "leaky_relu":
        # tf.nn.leaky_relu keeps alpha as a float32 attribute even for float64 tensors, where
        # where(x > 0, x, slope * x) serves, with torch's gradient at x == 0 (the slope; that of
        # max(x, slope * x) is 1 there); in float32 the one op, which grappler can fuse with the
        # convolution and bias before it
        leaky = leaky_relu_grad_from_output(layer.slope)
        return lambda x: tf.where(x > 0, x, layer.slope * x) if x.dtype == tf.float64 else leaky(x)
    if layer.kind == "tanh":
        return tf.math.tanh
    raise TypeError(f"tf backend cannot build {layer!r}")


def reshape_to_nhwc(shape):
    c, h, w = shape
    return lambda x: tf.transpose(tf.reshape(x, [-1, c, h, w]), [0, 2, 3, 1])


def flatten_chw(x):
    """NHWC -> [N, C*H*W] in channel-first order, matching the canonical Dense layout."""
    return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [tf.shape(x)[0], -1])


def upsample_nearest(x):
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def stateless(layer):
    """The function of a layer without variables; NHWC throughout."""
    if isinstance(layer, S.Act):
        return activation(layer)
    if isinstance(layer, S.Reshape):
        return reshape_to_nhwc(layer.shape)
    if isinstance(layer, S.Flatten):
        return flatten_chw
    if isinstance(layer, S.Upsample):
        return upsample_nearest
    if isinstance(layer, S.AvgPool):
        return lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID")
    if isinstance(layer, S.MaxPool):
        return max_pool
    if isinstance(layer, S.GlobalPool):  # accumulated and returned in float32 at least
        reduce = tf.reduce_sum if layer.kind == "sum" else tf.reduce_mean
        return lambda x: reduce(widened(x, tf.float64 if x.dtype == tf.float64 else tf.float32), axis=[1, 2])
    raise TypeError(f"tf backend cannot build {layer!r}")


PARAMETRIC = {S.Dense: Dense, S.Conv: Conv, S.ConvT: ConvT, S.BatchNorm: BatchNorm, S.Embedding: EmbeddingTable,
              S.Projection: EmbeddingTable, S.SelfAttention: Layer}


def run(calls, x, training, context: dict):
    """The calls in turn; those that declare `reads_context` also receive the forward's context."""
    for call in calls:
        x = call(x, training, context) if getattr(call, "reads_context", False) else call(x, training)
    return x


class ResidualCall:
    """main(x) + shortcut(x); both paths see the forward's context."""

    reads_context = True

    def __init__(self, main: list, shortcut: list):
        self.main, self.shortcut = main, shortcut

    def __call__(self, x, training, context):
        """The paths' sum; where one path's result is low precision and the other's is not (a
        projection head), in the wider dtype, as PyTorch's type promotion gives."""
        main, shortcut = run(self.main, x, training, context), run(self.shortcut, x, training, context)
        if main.dtype != shortcut.dtype:
            wide = max(main.dtype, shortcut.dtype, key=lambda dtype: dtype.size)
            main, shortcut = widened(main, wide), widened(shortcut, wide)
        return main + shortcut


class Network(tf.Module):
    def __init__(self, net: S.Network, dtype=tf.float32):
        super().__init__(name=net.name)
        self.layers = []
        self.prelude = net.prelude
        self.embedding = self._add(net.prelude.embedding, dtype) if net.prelude else None
        self.calls = self._build(net.layers, dtype)
        self.variables_by_name = {n: v for built in self.layers for n, v in built.vars.items()}
        self.perms = {n: p for built in self.layers for n, p in built.perms.items()}
        self.trainables = [v for v in self.variables_by_name.values() if v.trainable]
        self.trainable_names = [n for n, v in self.variables_by_name.items() if v.trainable]

    def _add(self, layer, dtype) -> Layer:
        built = PARAMETRIC[type(layer)](layer, dtype)
        self.layers.append(built)
        return built

    def _build(self, layers, dtype) -> list:
        calls = []
        for layer in layers:
            if isinstance(layer, S.Residual):
                main = self._build(layer.main, dtype)
                if layer.main[0] == S.Act("relu"):
                    main[0] = _stateless(relu_beside_a_shortcut)
                calls.append(ResidualCall(main, self._build(layer.shortcut, dtype)))
            elif isinstance(layer, S.Dropout):
                calls.append(Dropout(layer))
            elif isinstance(layer, S.CondBatchNorm):
                calls.append(CondBatchNormCall(*(self._add(part, dtype) for part in layer.parts()), layer.cond))
            elif isinstance(layer, S.SelfAttention):
                gamma = self._add(layer, dtype)
                calls.append(SelfAttentionCall(*(self._add(part, dtype) for part in layer.parts()), gamma))
            elif isinstance(layer, S.Projection):
                calls.append(ProjectionCall(self._add(layer, dtype)))
            elif type(layer) in PARAMETRIC:
                calls.append(self._add(layer, dtype))
            else:
                calls.append(_stateless(stateless(layer)))
        return calls

    def __call__(self, x, training: bool, context: dict | None = None):
        """context: what this forward's layers may read beside x, built once per call by the GAN
        ("call_key": int64 scalar keying the dropout masks, in training; "labels": int [B] class
        labels) and completed by the prelude ("cond<i>")."""
        context = dict(context or {})
        out = run(self.calls, self._hierarchical_z(x, training, context) if self.prelude else x, training, context)
        return widened(out, x.dtype)  # low-precision results flow up to here (ganbench.precision)

    def _hierarchical_z(self, z, training, context: dict):
        """Chunk 0 of z; puts cond<i> = concat(embedding(labels), chunk i) into the context."""
        chunks = tf.split(z, self.prelude.chunks, axis=1)
        embedded = self.embedding.lookup(context["labels"], training)
        for i in range(1, self.prelude.chunks):
            context[f"cond{i}"] = tf.concat([embedded, chunks[i]], axis=1)
        return chunks[0]

    def set_compute_dtype(self, dtype) -> None:
        """The precision its convolutions and dense layers compute in (None: the weights' own)."""
        for built in self.layers:
            if isinstance(built, LowPrecision):
                built.compute_dtype = dtype

    def canonical_weight(self, name: str):
        """A weight variable as its canonical (rows = first canonical axis, -1) matrix, a tensor."""
        var = self.variables_by_name[name]
        canonical = tf.transpose(var, TO_CANONICAL) if self.perms[name] else var
        return tf.reshape(canonical, [canonical.shape[0], -1])

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
