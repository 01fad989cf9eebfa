"""TensorFlow's convolutions as ganbench computes them: the padding each layer asks for, and the
forms written out where they beat oneDNN's kernels on a CPU (each with the rule that chooses it
and the measurement behind the rule), tested equal to TensorFlow's own ops in float64."""

import tensorflow as tf

from ganbench.archs import spec as S


def padding(layer, size: int):
    """TensorFlow's "VALID" or "SAME" where it pads as the layer does (the ops TensorFlow fuses and
    tunes best), else the explicit pads. size: the input side of a Conv, the output side of a
    ConvT (its adjoint Conv's input)."""
    before, after = layer.pads
    if before == after == 0:
        return "VALID"
    out = -(-size // layer.stride)
    total = max((out - 1) * layer.stride + layer.kernel - size, 0)
    if (before, after) == (total // 2, total - total // 2):
        return "SAME"
    return [[0, 0], [before, after], [before, after], [0, 0]]


def convolution(layer, compute_dtype, x, w):
    """The layer's convolution of x (a Conv's w in HWIO, a ConvT's in HWOI: [k, k, the larger
    map's channels, the smaller's]). TensorFlow's ops and their gradients, unless one of ganbench's
    forms pays (transposed_by_matmul_pays, weight_gradient_by_matmul_pays): then the forward and
    both gradients are written out from `down`, `up` and `weight_gradient`."""
    transposed = isinstance(layer, S.ConvT)
    side = x.shape[1]
    large_side, small_side = (layer.out_size(side), side) if transposed else (side, layer.out_size(side))
    if not (transposed_by_matmul_pays(layer, w.shape[2])
            or weight_gradient_by_matmul_pays(layer, small_side, compute_dtype)):
        return up(layer, x, w, large_side) if transposed else down(layer, x, w)

    @tf.autograph.experimental.do_not_convert  # autograph would convert the gradient's closure
    @tf.custom_gradient
    def written_out(x, w):
        def gradients(dy):
            if transposed:
                return down(layer, dy, w), weight_gradient(layer, dy, x, w.shape, compute_dtype)
            return up(layer, dy, w, large_side), weight_gradient(layer, x, dy, w.shape, compute_dtype)

        return (up(layer, x, w, large_side) if transposed else down(layer, x, w)), gradients

    return written_out(x, w)


def down(layer, large, w):
    """The convolution from the larger map to the smaller: a Conv's forward, a ConvT's input
    gradient."""
    return tf.nn.conv2d(large, w, layer.stride, padding(layer, large.shape[1]))


def up(layer, small, w, large_side: int):
    """Its adjoint, from the smaller map to the larger: a ConvT's forward, a Conv's input gradient."""
    if transposed_by_matmul_pays(layer, w.shape[2]):
        return transposed_by_matmul(layer, small, w, large_side)
    return transposed_kernel(layer, small, w, large_side)


def transposed_kernel(layer, small, w, large_side: int):
    """`up` as TensorFlow's op (oneDNN's kernel on a CPU)."""
    shape = [tf.shape(small)[0], large_side, large_side, w.shape[2]]
    return tf.nn.conv2d_transpose(small, w, shape, layer.stride, padding(layer, large_side))


def weight_gradient(layer, large, small, w_shape, compute_dtype):
    """The weight gradient of `down` (and of `up`, its adjoint) for the maps large and small."""
    if weight_gradient_by_matmul_pays(layer, small.shape[1], compute_dtype):
        return weight_gradient_by_matmul(layer, large, small, w_shape)
    s = layer.stride
    return tf.compat.v1.nn.conv2d_backprop_filter(large, w_shape, small, [1, s, s, 1], padding(layer, large.shape[1]))


# In bf16, oneDNN's weight gradients of convolutions whose smaller map (a Conv's output, a ConvT's
# input) is at most 8x8 ran slower than matmuls over the larger map's blocks: 17.8 against 6.7 ms
# for dcgan_pytorch_example's D.conv3 (256 -> 512 channels, 8 -> 4), 11.5 against 7.2 for its D.conv2
# (16 -> 8), and dcgan's and dcgan_pytorch_example's bf16 steps gained 1.20x and 1.17x. Kernels
# wider than twice the stride (dcgan_tf_tutorial's 5x5) made that preset's step slower, and so did
# biggan_cpu's 1x1 convolutions at stride 1; from 16x16 maps up the two were level, and float32
# steps did not gain (benchmarks/tf_weight_gradients.py, retired at a52ff61)
MATMUL_WEIGHT_GRADIENT_MAX_SIDE = 8


def weight_gradient_by_matmul_pays(layer, small_side: int, compute_dtype) -> bool:
    """Whether the layer takes its weight gradient by weight_gradient_by_matmul: in a low precision
    (compute_dtype, None in float32 and float64) on small maps, strided, with a kernel at most twice
    the stride."""
    return (compute_dtype is not None and small_side <= MATMUL_WEIGHT_GRADIENT_MAX_SIDE
            and 2 <= layer.stride and layer.kernel <= 2 * layer.stride)


def weight_gradient_by_matmul(layer, large, small, w_shape):
    """The weight gradient of the convolution that maps `large` to `small` (kernel k, stride s, the
    layer's leading pad), the same one for the transposed convolution that maps `small` back:
    dw[kh, kw, a, b] sums large[s*i + kh, s*j + kw, a] * small[i, j, b] over the batch and small's
    positions (i, j). With the kernel padded to m*s taps (m = ceil(k/s)) and kh = s*p + q, the
    larger map's s x s blocks laid out as channels (space_to_depth) make the sum over each of the
    m x m block offsets p one matmul, for all q at once (4 matmuls for a 4x4 kernel at stride 2)."""
    k, s = layer.kernel, layer.stride
    m, side = -(-k // s), small.shape[1]
    blocks = larger_map_blocks(layer, large, side)
    small = tf.reshape(small, [-1, w_shape[3]])
    per_offset = [tf.matmul(tf.reshape(blocks[:, p:p + side, r:r + side, :], [-1, s * s * w_shape[2]]),
                            small, transpose_a=True) for p in range(m) for r in range(m)]
    dw = tf.reshape(tf.stack(per_offset), [m, m, s, s, w_shape[2], w_shape[3]])  # p, r, q, t, a, b
    dw = tf.reshape(tf.transpose(dw, [0, 2, 1, 3, 4, 5]), [m * s, m * s, w_shape[2], w_shape[3]])
    return dw[:k, :k]


def larger_map_blocks(layer, large, side: int):
    """`large` padded as the layer pads it, cut to the rows and columns that a convolution to a
    side x side map reads ((side - 1 + ceil(k/s)) * s), its stride x stride blocks laid out as
    channels (space_to_depth; block row, block column, channel)."""
    k, s, before = layer.kernel, layer.stride, layer.pads[0]
    used = (side - 1 + -(-k // s)) * s
    after = max(used - before - large.shape[1], 0)
    padded = tf.pad(large, [[0, 0], [before, after], [before, after], [0, 0]])[:, :used, :used, :]
    return tf.nn.space_to_depth(padded, s) if s > 1 else padded


# oneDNN's transposed convolutions to one channel (G's last layer and the input gradient of D's
# first on MNIST) ran at about 5% of the matmul rate; as transposed_by_matmul, 1.6-2.6x faster alone
# in float32 and bf16 (6.6 -> 2.6 ms in float32, 4.1 -> 2.6 in bf16 for dcgan_pytorch_example's
# G.deconv4), the MNIST steps 1.02-1.06x. To 64 channels and more it lost (0.3-1.1x); the rule keeps
# to the strided layers measured, on CPUs (benchmarks/tf_conv_forms.py, retired at a52ff61)
def transposed_by_matmul_pays(layer, large_channels: int) -> bool:
    """Whether `up` (a ConvT's forward, a Conv's input gradient) is transposed_by_matmul: to one
    channel, strided."""
    return large_channels == 1 and layer.stride >= 2


def block_weights(layer, w):
    """w ([k, k, larger map's channels, smaller's]) as [m, m, s*s*in, out] (m = ceil(k/s)): the
    kernel padded to m*s taps, tap s*p + q at block offset p and in-block row q, in space_to_depth's
    channel order (the layout weight_gradient_by_matmul builds its result from)."""
    k, s = layer.kernel, layer.stride
    m = -(-k // s)
    w = tf.pad(w, [[0, m * s - k], [0, m * s - k], [0, 0], [0, 0]])
    w = tf.transpose(tf.reshape(w, [m, s, m, s, w.shape[2], w.shape[3]]), [0, 2, 1, 3, 4, 5])
    return tf.reshape(w, [m, m, s * s * w.shape[4], w.shape[5]])


def transposed_by_matmul(layer, small, w, large_side: int):
    """`up` as one matmul and shifted sums: each smaller-map pixel times the whole kernel, the
    products of block offset (p, r) shifted by it and summed, the stride x stride blocks laid out by
    depth_to_space (the adjoint of larger_map_blocks), the layer's padding cut off."""
    s, before, side = layer.stride, layer.pads[0], small.shape[1]
    weights = block_weights(layer, w)
    m, block = weights.shape[0], weights.shape[2]
    per_pixel = tf.matmul(tf.reshape(small, [-1, small.shape[3]]), tf.reshape(weights, [-1, weights.shape[3]]),
                          transpose_b=True)
    per_pixel = tf.reshape(per_pixel, [-1, side, side, m, m, block])
    summed = tf.add_n([tf.pad(per_pixel[:, :, :, p, r, :], [[0, 0], [p, m - 1 - p], [r, m - 1 - r], [0, 0]])
                       for p in range(m) for r in range(m)])
    padded = tf.nn.depth_to_space(summed, s) if s > 1 else summed
    end = before + large_side
    grow = max(end - padded.shape[1], 0)  # rows no tap reaches: zero
    padded = tf.pad(padded, [[0, 0], [0, grow], [0, grow], [0, 0]])
    return padded[:, before:end, before:end, :]


def transposed_from_a_pixel(x, w):
    """tf.nn.conv2d_transpose of a 1x1 input without padding (DCGAN's first G layer; w in HWOI):
    output pixel (i, j) is x @ w[i, j]^T, so the whole layer is one matmul. oneDNN's kernel for
    this shape ran at under a tenth of the matmul rate, forward and backward."""
    kh, kw, cout, cin = w.shape
    out = tf.matmul(tf.reshape(x, [-1, cin]), tf.reshape(w, [kh * kw * cout, cin]), transpose_b=True)
    return tf.reshape(out, [-1, kh, kw, cout])
