"""Dropout with the torch backend's keyed mask: rng.mix32's hash of each element's NCHW index in
the global batch, xor the layer's call key, so both backends drop the same elements."""

import tensorflow as tf

from ganbench.archs import spec as S
from ganbench.rng import dropout_threshold, mix32, name_key


def shift(x, bits: int):
    return tf.bitwise.right_shift(x, tf.constant(bits, x.dtype))


class Dropout:
    """Dropout with the torch backend's keyed mask: the hash runs over NCHW element indices.
    Reads the forward's context: "call_key", an int64 scalar."""

    reads_context = True

    def __init__(self, layer: S.Dropout):
        self.layer_key, self.threshold = name_key(layer.name), dropout_threshold(layer.rate)
        self.scale = 1.0 / (1.0 - layer.rate)

    def __call__(self, x, training, context):
        if not training:
            return x
        call_key = context.get("call_key")
        if call_key is None:
            raise ValueError("dropout in training needs the step's dropout key")
        key, shard = mix32(call_key ^ self.layer_key, shift), int(context.get("shard", 0))
        n, (h, w, c) = x.shape[0], x.shape[1:]
        if n is None or (shard + 1) * n * c * h * w > 2**31:
            keep = self._keep_mask_int64(key, tf.shape(x, out_type=tf.int64)[0], (h, w, c), shard)
            return x * (tf.cast(keep, x.dtype) * self.scale)
        return x * keep_scale_32(key, (n, h, w, c), shard, self.threshold, self.scale, x.dtype)

    def _keep_mask_int64(self, key, n, hwc, shard: int):
        """The keep mask (see keep_scale_32) for indices beyond 31 bits or an unknown batch size."""
        h, w, c = hwc
        index = tf.transpose(tf.reshape(tf.range(n * c * h * w) + shard * n * c * h * w, [n, c, h, w]), [0, 2, 3, 1])
        return mix32(index ^ key, shift) >= self.threshold


@tf.function(jit_compile=True)
def keep_scale_32(key, nhwc, shard: int, threshold: int, scale: float, dtype):
    """keep[b, h, w, c] * scale of a dropout layer: kept where the hash of the element's NCHW index
    in the global batch (a replica's rows start at shard * n), xor the layer's call key, is at least
    the threshold. In uint32 (rng.mix32's 32-bit form), the index built in NHWC order from small
    ranges; XLA fuses the whole hash into one pass over the batch (unfused, its xor, shift and
    multiply passes took 3.5x as long on the TF tutorial's D)."""
    n, h, w, c = nhwc
    in_row = tf.reshape(tf.range(h * w), [1, h, w, 1]) + tf.reshape(tf.range(c) * (h * w), [1, 1, 1, c])
    rows = tf.reshape(tf.range(shard * n, (shard + 1) * n) * (c * h * w), [n, 1, 1, 1])
    index = tf.bitcast(in_row + rows, tf.uint32)
    keep = mix32(index ^ tf.cast(key, tf.uint32), shift, wraps=True) >= tf.constant(threshold, tf.uint32)
    return tf.cast(keep, dtype) * tf.constant(scale, dtype)
