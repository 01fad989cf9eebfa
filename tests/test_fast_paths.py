"""Layers that a backend computes by another route than the framework's own op, for speed, against
that op in float64: values and gradients."""

import numpy as np
import pytest

from ganbench.archs import spec as S

EXACT = 1e-12  # float64, a different summation order


@pytest.mark.parametrize("bias", [False, True])
def test_torch_transposed_convolution_of_a_pixel_is_the_frameworks(bias):
    import torch
    import torch.nn.functional as F

    from ganbench.backends.torch.nets import make_layer

    layer = S.ConvT("deconv0", 10, 6, kernel=4, stride=1, padding=0, bias=bias)
    module = make_layer(layer).double()
    torch.nn.init.normal_(module.weight)
    if bias:
        torch.nn.init.normal_(module.bias)
    x = torch.randn(3, 10, 1, 1, dtype=torch.float64, requires_grad=True)
    ours = module(x)
    theirs = F.conv_transpose2d(x, module.weight, module.bias)
    assert ours.shape == theirs.shape == (3, 6, 4, 4)
    torch.testing.assert_close(ours, theirs, rtol=EXACT, atol=EXACT)
    upstream = torch.randn_like(ours)
    params = [x, module.weight] + ([module.bias] if bias else [])
    for a, b in zip(torch.autograd.grad(ours, params, upstream), torch.autograd.grad(theirs, params, upstream)):
        torch.testing.assert_close(a, b, rtol=EXACT, atol=EXACT)


@pytest.mark.parametrize("bias", [False, True])
def test_tf_transposed_convolution_of_a_pixel_is_the_frameworks(bias):
    from ganbench.backends.tf.nets import ConvT  # before TensorFlow (import order)

    import tensorflow as tf

    layer = S.ConvT("deconv0", 10, 6, kernel=4, stride=1, padding=0, bias=bias)
    module = ConvT(layer, tf.float64)
    for var in module.vars.values():
        var.assign(tf.random.normal(var.shape, dtype=tf.float64))
    x = tf.random.normal([3, 1, 1, 10], dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = module(x, True)
        theirs = tf.nn.conv2d_transpose(x, module.w, [3, 4, 4, 6], 1, "VALID")
        theirs = tf.nn.bias_add(theirs, module.b) if bias else theirs
    assert ours.shape == theirs.shape == (3, 4, 4, 6)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=EXACT, atol=EXACT)
    upstream = tf.random.normal(ours.shape, dtype=tf.float64)
    params = [x, *module.vars.values()]
    for a, b in zip(tape.gradient(ours, params, upstream), tape.gradient(theirs, params, upstream)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=EXACT, atol=EXACT)


@pytest.mark.parametrize("kernel, stride, pads", [(4, 2, 1), (5, 2, (1, 2)), (4, 2, 0), (3, 1, 1), (4, 1, 0), (1, 1, 0)])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
@pytest.mark.parametrize("large_channels", [6, 1])
def test_tf_convolutions_written_out_are_tensorflows(kernel, stride, pads, transposed, large_channels, monkeypatch):
    """TensorFlow's convolutions written out by ganbench (convolutions.convolution: the weight gradient as
    matmuls over the larger map's blocks, the transposed map as one matmul and shifted sums), here
    forced on every layer: the output, both gradients and the second-order gradient that WGAN-GP's
    penalty takes (of the input gradient's square sum, by w) equal TensorFlow's own, with symmetric,
    asymmetric ('same' at stride 2, kernel 5) and no padding, strides 2 and 1, 1x1 kernels, for a
    convolution from 8x8 and a transposed one from 4x4, to 6 channels and to one."""
    from functools import partial

    from ganbench.backends.tf import convolutions  # before TensorFlow (import order)

    import tensorflow as tf

    monkeypatch.setattr(convolutions, "weight_gradient_by_matmul_pays", lambda *args: True)
    monkeypatch.setattr(convolutions, "transposed_by_matmul_pays", lambda *args: True)
    rng = np.random.default_rng(0)
    if transposed:
        layer = S.ConvT("deconv", 5, large_channels, kernel, stride, pads, bias=False)
        x, w = rng.standard_normal((3, 4, 4, 5)), rng.standard_normal((kernel, kernel, large_channels, 5))
        out_shape = [3, layer.out_size(4), layer.out_size(4), large_channels]
        own = partial(tf.nn.conv2d_transpose, output_shape=out_shape, strides=stride,
                      padding=convolutions.padding(layer, out_shape[1]))
    else:
        layer = S.Conv("conv", large_channels, 5, kernel, stride, pads, bias=False)
        x, w = rng.standard_normal((3, 8, 8, large_channels)), rng.standard_normal((kernel, kernel, large_channels, 5))
        out_shape = [3, layer.out_size(8), layer.out_size(8), 5]
        own = partial(tf.nn.conv2d, strides=stride, padding=convolutions.padding(layer, 8))
    x, w, dy = tf.constant(x), tf.constant(w), tf.constant(rng.standard_normal(out_shape))
    results = []
    for op in (own, partial(convolutions.convolution, layer, tf.float64)):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                y = op(x, w)
            dx, dw = tape.gradient(y, [x, w], output_gradients=dy)
            penalty = tf.reduce_sum(tf.square(dx))
        results.append([y, dx, dw, outer.gradient(penalty, w)])
    for own_value, written_out in zip(*results):
        np.testing.assert_allclose(written_out.numpy(), own_value.numpy(), rtol=EXACT, atol=EXACT)


def test_torch_activations_overwrite_only_their_own_layers_results():
    """An activation right after a convolution, dense layer or BatchNorm runs in place (its input is
    that layer's fresh result); one that opens a residual block's main path does not (its input is
    the shortcut's too). The float64 parity tests prove the values against TensorFlow."""
    import torch.nn.functional as F

    from ganbench.archs import build_spec
    from ganbench.backends.torch.nets import ResidualCall, build_network

    def in_place_flags(calls):
        return [call.keywords["inplace"] for call in calls if getattr(call, "func", None) in (F.relu, F.leaky_relu)]

    g = build_network(build_spec("dcgan_pytorch_example", 1).generator)
    assert in_place_flags(g.calls) == [True] * 4  # ReLU after each of G's four BatchNorms
    d = build_network(build_spec("wgan_gp_resnet", 3).discriminator)
    blocks = [call for call in d.calls if isinstance(call, ResidualCall)]
    # the first block opens with a convolution; the others with a ReLU of the block's input
    assert [in_place_flags(block.main) for block in blocks] == [[True]] + [[False, True]] * (len(blocks) - 1)


@pytest.mark.parametrize("activation, dtype", [("leaky_relu", "float32"), ("residual_head_relu", "float32"),
                                               ("residual_head_relu", "float64")])
def test_tf_activation_written_for_grappler_is_tensorflows(activation, dtype):
    """The activations written so that grappler's remapper works (the float32 LeakyReLU whose
    gradient reads its output, so that conv + bias + LeakyReLU fuse in training; the ReLU at a
    residual block's head, max(x, 0) with ReLU's gradient): TensorFlow's values, gradients and the
    gradient penalty's second-order gradient, bit for bit."""
    from ganbench.backends.tf import grappler  # before TensorFlow (import order)

    import tensorflow as tf

    ours, tensorflows = {
        "leaky_relu": (grappler.leaky_relu_grad_from_output(0.2), lambda v: tf.nn.leaky_relu(v, 0.2)),
        "residual_head_relu": (grappler.relu_beside_a_shortcut, tf.nn.relu),
    }[activation]
    rng = np.random.default_rng(0)
    x, upstream = (tf.constant(rng.standard_normal((4, 6)), dtype) for _ in range(2))
    weight = tf.Variable(rng.standard_normal((6, 6)), dtype=dtype)

    @tf.function
    def grads(fn):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = fn(x @ weight)
            g = inner.gradient(y, x, output_gradients=upstream)
            penalty = tf.reduce_sum(tf.square(g))
        return y, g, outer.gradient(penalty, weight)

    for a, b in zip(grads(ours), grads(tensorflows)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_tf_residual_discriminator_graph_keeps_grapplers_remapper(capfd, monkeypatch):
    """A Relu op at a residual block's head, after a block whose shortcut ends in a convolution,
    makes grappler's remapper fail on the whole graph (TensorFlow 2.21 logs "remapper failed ...
    fanout 'Relu_N' exist for missing node 'add_M'" on stderr and fuses nothing). ganbench's
    residual D graph is remapped; the same D with a Relu op there still fails, unless this
    TensorFlow no longer has the bug (then there is nothing to prove: skipped)."""
    from ganbench.archs import build_spec
    from ganbench.backends.tf import nets  # before TensorFlow (import order)

    import tensorflow as tf

    spec = build_spec("sngan_resnet", 3, 32, 0.0625)

    def remapper_log(network) -> str:
        capfd.readouterr()
        x = tf.constant(np.random.default_rng(0).standard_normal((2, 32, 32, 3)), tf.float32)
        tf.function(lambda images: network(images, True, {}))(x)
        return capfd.readouterr().err

    assert "remapper failed" not in remapper_log(nets.Network(spec.discriminator))
    monkeypatch.setattr(nets, "relu_beside_a_shortcut", tf.nn.relu)
    if "remapper failed" not in remapper_log(nets.Network(spec.discriminator)):
        pytest.skip("this TensorFlow's remapper handles a Relu op there")
