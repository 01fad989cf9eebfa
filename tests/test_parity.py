"""The same model in both frameworks: forward outputs and training steps agree.

Tolerances (named, with the reason):
- FORWARD_ATOL: fp32 forward outputs, max abs difference (the issue's bound).
- D_TRAIN_FORWARD_ATOL: fp32 D logits (|logit| ~ 3) in training mode on real MNIST. Batch
  statistics put each backend ~1e-5 from the float64 result (measured: torch 8.5e-6, tf 4.9e-6),
  so the two may differ by twice that; in float64 they agree to 1e-13.
- FP64_STEP_RTOL: float64 training, every tensor after 1 and 5 steps (and eager against graph or
  compiled after 2), relative Frobenius norm. This proves the two backends and every execution
  mode compute the same function: same losses, BN, Adam. Several float32 steps are never
  compared: Adam normalises each gradient element by its own size, so an element whose gradient
  is at the level of float32 rounding moves by up to +-lr in either direction, and which elements
  those are depends on the CPU's kernels (an AMD EPYC and an Intel Xeon disagreed by 20x).
- One float32 step is checked against a bound instead: Adam's first update is
  lr * g / (|g| + eps), so no element moves by more than lr, whatever the kernels round (plus
  one rounding of w - update to float32: an ulp of w).
"""

import numpy as np
import pytest

from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.rng import normal_noise
from ganbench.step_inputs import StepInputs

FORWARD_ATOL = 1e-5
D_TRAIN_FORWARD_ATOL = 3e-5
FP64_STEP_RTOL = 1e-9
FIRST_ADAM_STEP_BOUND = 1 + 1e-6  # |update| <= lr, plus float32 rounding of the update itself

HP = TrainConfig()


@pytest.fixture(scope="module")
def backends():
    return get_backend("torch"), get_backend("tf")


def pair(backends, spec, state, dtype="float32"):
    return [b.GAN(spec, state, HP, device="cpu", dtype=dtype) for b in backends]


def rel_norm(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)


def worst(state_a, state_b, moments=True):
    """(max relative norm difference, tensor name) over weights, BN buffers and Adam moments."""
    results = []
    for key in state_a["nets"]:
        for name, a in state_a["nets"][key].items():
            results.append((rel_norm(a, state_b["nets"][key][name]), f"{key}.{name}"))
        for moment in ("exp_avg", "exp_avg_sq") if moments and key in state_a["opt"] else ():
            for name, a in state_a["opt"][key][moment].items():
                results.append((rel_norm(a, state_b["opt"][key][moment][name]), f"opt.{key}.{moment}.{name}"))
        if key in state_a["opt"]:
            assert state_a["opt"][key]["step"] == state_b["opt"][key]["step"]
    return max(results)


@pytest.mark.parametrize("training", [False, True])
def test_generator_forward(backends, spec, init_state, training):
    torch_gan, tf_gan = pair(backends, spec, init_state)
    z = normal_noise(0, 99, (64, 100))
    a, b = torch_gan.generate(z, training), tf_gan.generate(z, training)
    assert a.shape == (64, 32, 32, 1)
    assert np.abs(a - b).max() < FORWARD_ATOL
    assert np.abs(a).max() > 0.01  # a non-trivial output


@pytest.mark.parametrize("training", [False, True])
def test_discriminator_forward(backends, spec, init_state, real_batches, training):
    torch_gan, tf_gan = pair(backends, spec, init_state)
    x = real_batches[0, 0]
    a, b = torch_gan.discriminate(x, training), tf_gan.discriminate(x, training)
    assert a.shape == (64,)
    assert np.abs(a - b).max() < (D_TRAIN_FORWARD_ATOL if training else FORWARD_ATOL)
    assert np.std(a) > 1e-3


def test_bn_running_stats_follow_training_forwards(backends, spec, init_state):
    torch_gan, tf_gan = pair(backends, spec, init_state)
    z = normal_noise(0, 98, (64, 100))
    for gan in (torch_gan, tf_gan):
        gan.generate(z, training=True)
    a, b = (g.export_state()["nets"]["G"] for g in (torch_gan, tf_gan))
    assert np.abs(a["bn1.running_var"] - 1.0).max() > 1e-3  # moved away from init
    for name in ("bn0.running_mean", "bn0.running_var", "bn2.running_mean", "bn2.running_var"):
        assert rel_norm(a[name], b[name]) < 1e-5  # statistics of one float32 forward: FORWARD_ATOL's scale


def test_discriminator_forward_float64(backends, spec, init_state, real_batches):
    torch_gan, tf_gan = pair(backends, spec, init_state, "float64")
    x = real_batches[0, 0]
    assert np.abs(torch_gan.discriminate(x, True) - tf_gan.discriminate(x, True)).max() < 1e-12


def train_both(backends, spec, init_state, real_batches, steps, dtype):
    torch_gan, tf_gan = pair(backends, spec, init_state, dtype)
    losses = []
    for s in range(steps):
        z = normal_noise(0, 97, (1, 64, 100), s)
        inputs = StepInputs(real_batches[s], z)
        losses.append((torch_gan.train_step(inputs), tf_gan.train_step(inputs)))
    return torch_gan.export_state(), tf_gan.export_state(), losses


@pytest.mark.parametrize("steps", [1, 5])
def test_training_steps_float64(backends, spec, init_state, real_batches, steps):
    a, b, losses = train_both(backends, spec, init_state, real_batches, steps, "float64")
    err, name = worst(a, b)
    assert err < FP64_STEP_RTOL, name
    for la, lb in losses:
        assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=1e-9)
        assert la["g_loss"] == pytest.approx(lb["g_loss"], rel=1e-9)
    moved = rel_norm(init_state["nets"]["G"]["deconv1.weight"], a["nets"]["G"]["deconv1.weight"])
    assert moved > 1e-3  # the weights really trained


def test_one_float32_step_is_a_bounded_adam_step(backends, spec, init_state, real_batches):
    """float32: each backend's first step moves every weight by at most lr (Adam's bound), by
    about lr where the gradient is well above eps, and G's BatchNorm statistics (from G's one
    forward, on identical weights) agree to the forward tolerance."""
    torch_state, tf_state, _ = train_both(backends, spec, init_state, real_batches, 1, "float32")
    for state in (torch_state, tf_state):
        for key, lr in (("G", HP.lr_g), ("D", HP.lr_d)):
            for name, before in init_state["nets"][key].items():
                if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                    continue
                moved = np.abs(state["nets"][key][name].astype(np.float64) - before)  # exact
                assert np.all(moved <= lr * FIRST_ADAM_STEP_BOUND + np.spacing(np.abs(before))), f"{key}.{name}"
        moved = np.abs(state["nets"]["G"]["deconv1.weight"] - init_state["nets"]["G"]["deconv1.weight"])
        assert np.median(moved) > 0.5 * HP.lr_g  # the step was taken, with this lr
    for name in ("bn0.running_mean", "bn0.running_var", "bn2.running_mean", "bn2.running_var"):
        assert rel_norm(torch_state["nets"]["G"][name], tf_state["nets"]["G"][name]) < 1e-5, name


@pytest.mark.parametrize("backend, mode", [("tf", "eager"), ("tf", "compiled"), ("torch", "compiled")])
def test_execution_modes_compute_the_same_steps(backend, mode, spec, init_state, real_batches):
    """Eager, graph and compiled (torch.compile / XLA) runs of one backend agree after 2 float64
    steps: the modes compute the same function (float32 rounding would differ by kernel, above)."""
    module = get_backend(backend)
    default = module.GAN(spec, init_state, HP, device="cpu", dtype="float64")
    other = module.GAN(spec, init_state, HP, device="cpu", dtype="float64", mode=mode)
    assert other.mode == mode and default.mode == module.DEFAULT_MODE
    for s in range(2):
        z = normal_noise(0, 96, (1, 64, 100), s)
        inputs = StepInputs(real_batches[s], z)
        la, lb = default.train_step(inputs), other.train_step(inputs)
        assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=FP64_STEP_RTOL)
    err, name = worst(default.export_state(), other.export_state())
    assert err < FP64_STEP_RTOL, name


def test_unknown_mode_is_refused(spec, init_state):
    from ganbench.errors import GanbenchError

    with pytest.raises(GanbenchError, match=r"the torch backend has no 'graph' mode \(choose from eager, compiled, "
                                            r"cudagraphs\)"):
        get_backend("torch").GAN(spec, init_state, HP, mode="graph")
    with pytest.raises(GanbenchError, match=r"the tf backend has no 'cudagraphs' mode \(choose from eager, graph, "
                                            r"compiled\)"):
        get_backend("tf").GAN(spec, init_state, HP, mode="cudagraphs")
    # CUDA graphs replay recorded GPU kernels: on the CPU, torch.compile would skip them silently
    with pytest.raises(GanbenchError, match=r"the torch backend's cudagraphs mode needs a CUDA device, not 'cpu' "
                                            r"\(use --mode compiled\)"):
        get_backend("torch").GAN(spec, init_state, HP, device="cpu", mode="cudagraphs")


def test_tf32_is_off_in_both_backends(backends, spec, init_state):
    """Both frameworks would use TF32 on an Ampere+ GPU by default; parity needs true float32."""
    import tensorflow as tf
    import torch

    pair(backends, spec, init_state)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert not tf.config.experimental.tensor_float_32_execution_enabled()
