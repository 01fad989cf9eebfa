"""Spectral normalisation, one semantics in both backends: PyTorch's parametrization.

Oracles: numpy's SVD (sigma after convergence), a numpy power iteration (one per training
forward), and torch.nn.utils.parametrizations.spectral_norm itself (output and weight gradient,
which flows through sigma).
"""

import numpy as np
import pytest

from ganbench.archs import spec as S
from ganbench.backends import get_backend
from ganbench.init import init_network, power_iteration

SIGMA_RTOL = 1e-6       # float64, after 100 power iterations on a matrix with a clear top gap
ITERATION_RTOL = 1e-10  # float64: one power iteration equals numpy's
TORCH_REF_RTOL = 1e-10  # float64: our layer against torch's own spectral_norm parametrization

CONV = S.Conv("conv", 3, 8, 3, 1, 1, sn=True)
NET = S.Network("D", (3, 8, 8), (CONV, S.Flatten(), S.Dense("fc", 8 * 8 * 8, 1, sn=True)))


def arrays():
    return {k: v.astype(np.float64) for k, v in init_network(NET, seed=3).items()}


def torch_net(values):
    import torch

    from ganbench.backends.torch.nets import build_network, load_canonical

    net = build_network(NET).to(torch.float64)
    load_canonical(net, NET, values)
    return net


def tf_net(values):
    get_backend("tf")
    import tensorflow as tf

    from ganbench.backends.tf.nets import Network

    net = Network(NET, tf.float64)
    net.load_canonical(values)
    return net


def forward(backend, net, x_nchw, training):
    if backend == "torch":
        import torch

        net.train(training)
        return net(torch.from_numpy(x_nchw)).detach().numpy()
    import tensorflow as tf

    return net(tf.constant(x_nchw.transpose(0, 2, 3, 1)), training).numpy()


def state_of(backend, net):
    if backend == "torch":
        from ganbench.backends.torch.nets import export_canonical

        return export_canonical(net, NET)
    return net.export_canonical()


def test_init_runs_torchs_warm_up():
    """u, v at init: 15 power iterations from normalised N(0, 1) vectors, on the float32 weight."""
    values = init_network(NET, seed=3)
    w = values["conv.weight"].astype(np.float64).reshape(8, -1)
    u, v = values["conv.sn_u"].astype(np.float64), values["conv.sn_v"].astype(np.float64)
    u2, v2 = power_iteration(w, u, v, 1)
    assert abs(np.linalg.norm(u) - 1) < 1e-6 and abs(np.linalg.norm(v) - 1) < 1e-6
    assert np.abs(u2 - u).max() < 0.1  # already near the fixed point


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_one_power_iteration_per_training_forward(backend):
    values = arrays()
    build = torch_net if backend == "torch" else tf_net
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    net = build(values)
    forward(backend, net, x, training=False)
    unchanged = state_of(backend, net)
    assert np.array_equal(unchanged["conv.sn_u"], values["conv.sn_u"])  # eval forwards keep u, v
    forward(backend, net, x, training=True)
    after = state_of(backend, net)
    for layer, rows in (("conv", 8), ("fc", 1)):
        w = values[f"{layer}.weight"].reshape(rows, -1)
        u, v = power_iteration(w, values[f"{layer}.sn_u"], values[f"{layer}.sn_v"], 1)
        np.testing.assert_allclose(after[f"{layer}.sn_u"], u, rtol=ITERATION_RTOL)
        np.testing.assert_allclose(after[f"{layer}.sn_v"], v, rtol=ITERATION_RTOL, atol=1e-15)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_sigma_converges_to_the_largest_singular_value(backend):
    values = arrays()
    build = torch_net if backend == "torch" else tf_net
    net = build(values)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    for _ in range(100):
        forward(backend, net, x, training=True)
    state = state_of(backend, net)
    w = values["conv.weight"].reshape(8, -1)
    sigma = state["conv.sn_u"] @ w @ state["conv.sn_v"]
    top = np.linalg.svd(w, compute_uv=False)[0]
    assert sigma == pytest.approx(top, rel=SIGMA_RTOL)
    # and the layer then computes with W / sigma: its output equals a plain conv with that weight
    plain = S.Network("D", (3, 8, 8), (S.Conv("conv", 3, 8, 3, 1, 1),))
    import torch

    from ganbench.backends.torch.nets import build_network, load_canonical

    ref = build_network(plain).to(torch.float64)
    load_canonical(ref, plain, {"conv.weight": values["conv.weight"] / sigma, "conv.bias": values["conv.bias"]})
    sn_conv = S.Network("D", (3, 8, 8), (CONV,))
    mine = build_network(sn_conv).to(torch.float64).eval()
    load_canonical(mine, sn_conv, {k: v for k, v in state.items() if k.startswith("conv.")})
    with torch.no_grad():
        t = torch.from_numpy(x)
        np.testing.assert_allclose(mine(t).numpy(), ref(t).numpy(), rtol=1e-10, atol=1e-12)


def test_torch_layer_matches_torch_parametrization_including_the_gradient():
    """Output and dL/dW of one training forward equal torch's spectral_norm (grad through sigma)."""
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    values = arrays()
    single = S.Network("D", (3, 8, 8), (CONV,))
    from ganbench.backends.torch.nets import build_network, load_canonical

    mine = build_network(single).to(torch.float64).train()
    load_canonical(mine, single, {k: v for k, v in values.items() if k.startswith("conv.")})
    ref = torch.nn.Conv2d(3, 8, 3, 1, 1).to(torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(values["conv.weight"]))
        ref.bias.copy_(torch.from_numpy(values["conv.bias"]))
    ref = spectral_norm(ref)
    with torch.no_grad():  # replace torch's random u, v (and its warm-up) by ours
        ref.parametrizations.weight[0]._u.copy_(torch.from_numpy(values["conv.sn_u"]))
        ref.parametrizations.weight[0]._v.copy_(torch.from_numpy(values["conv.sn_v"]))
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((4, 3, 8, 8)))
    out_mine, out_ref = mine(x), ref(x)
    np.testing.assert_allclose(out_mine.detach().numpy(), out_ref.detach().numpy(), rtol=TORCH_REF_RTOL, atol=1e-13)
    (out_mine**2).sum().backward()
    (out_ref**2).sum().backward()
    grad_mine = mine.layers["conv"].weight.grad.numpy()
    grad_ref = ref.parametrizations.weight.original.grad.numpy()
    np.testing.assert_allclose(grad_mine, grad_ref, rtol=1e-9, atol=1e-12)
    # the gradient flows through sigma: it is not the gradient with sigma held constant
    u, v = (ref.parametrizations.weight[0]._u.numpy(), ref.parametrizations.weight[0]._v.numpy())
    sigma = float(u @ values["conv.weight"].reshape(8, -1) @ v)
    weight = torch.from_numpy(values["conv.weight"]).requires_grad_(True)
    out = torch.nn.functional.conv2d(x, weight / sigma, torch.from_numpy(values["conv.bias"]), 1, 1)
    (out**2).sum().backward()
    assert np.abs(grad_mine - weight.grad.numpy()).max() > 1e-3 * np.abs(grad_mine).max()


def test_tf_weight_gradient_matches_torch():
    import torch

    values = arrays()
    x = np.random.default_rng(4).standard_normal((4, 3, 8, 8))
    tnet = torch_net(values).train()
    (tnet(torch.from_numpy(x)) ** 2).sum().backward()
    grads_torch = {name: tnet.layers[name].weight.grad.numpy() for name in ("conv", "fc")}
    import tensorflow as tf

    fnet = tf_net(values)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fnet(tf.constant(x.transpose(0, 2, 3, 1)), True) ** 2)
    grads = dict(zip(fnet.trainable_names, tape.gradient(loss, fnet.trainables)))
    np.testing.assert_allclose(fnet.to_canonical("conv.weight", grads["conv.weight"].numpy()), grads_torch["conv"],
                               rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(grads["fc.weight"].numpy(), grads_torch["fc"], rtol=1e-9, atol=1e-13)


# float64: the compiled graph sums in another order
SN_COMPILED_RTOL = 1e-10


def test_cudagraphs_calls_leave_the_vectors_in_their_own_buffers():
    """cudagraphs mode: a training forward rebinds u and v to its outputs, which a CUDA graph's
    next replay may overwrite; owning_sn_vectors copies the new values into the module's own
    buffers after each call, so that they keep their addresses (CUDA graph trees record anew when
    a buffer moves). The mode itself needs a GPU; torch.compile's CPU graph stands in for its
    compiled call here, two forwards before one backward as D's step runs them: the values and
    gradients equal the uncompiled net's."""
    import torch

    from ganbench.backends.torch.nets import SpectralNorm
    from ganbench.backends.torch.step import owning_sn_vectors

    net, reference = torch_net(arrays()), torch_net(arrays())
    compiled, produced = torch.compile(net), {}

    def recording(x):  # records the tensors the forward rebinds u and v to
        out = compiled(x)
        produced.update({id(m): (m.sn_u, m.sn_v) for m in net.modules() if isinstance(m, SpectralNorm)})
        return out

    layers = [(m, r) for m, r in zip(net.modules(), reference.modules()) if isinstance(m, SpectralNorm)]
    assert len(layers) == 2
    buffers = {id(m): (m.sn_u.data_ptr(), m.sn_v.data_ptr()) for m, _ in layers}
    rng, call = np.random.default_rng(0), owning_sn_vectors(net, recording)
    for _ in range(2):
        xs = [torch.from_numpy(rng.standard_normal((2, 3, 8, 8))) for _ in range(2)]
        loss = sum((call(x) ** 2).sum() for x in xs)
        expected = sum((reference(x) ** 2).sum() for x in xs)
        loss.backward()
        expected.backward()
        assert loss.item() == pytest.approx(expected.item(), rel=SN_COMPILED_RTOL)
    for m, r in layers:
        u, v = produced[id(m)]
        assert (m.sn_u.data_ptr(), m.sn_v.data_ptr()) == buffers[id(m)] != (u.data_ptr(), v.data_ptr())
        np.testing.assert_allclose(m.sn_u.numpy(), r.sn_u.numpy(), rtol=SN_COMPILED_RTOL)
        np.testing.assert_allclose(m.sn_v.numpy(), r.sn_v.numpy(), rtol=SN_COMPILED_RTOL)
        np.testing.assert_allclose(m.weight.grad.numpy(), r.weight.grad.numpy(), rtol=SN_COMPILED_RTOL)
