"""SNGAN and WGAN-GP in both frameworks: forwards and training steps agree.

Every architecture is run at reduced width (the parity argument does not depend on width) on
random images, with the options its recipe uses: n_dis 2, a fresh G batch, WGAN-GP's alphas and a
learning rate that changes between steps (linear decay).

Tolerances:
- FP64_STEP_RTOL: float64, every weight, BN buffer and spectral-norm vector after 3 steps across
  backends, and after 2 steps eager against compiled (torch.compile / XLA) in one backend,
  relative Frobenius norm (measured ~1e-13). Training steps are compared in float64 only: fusion
  and each CPU's kernels reorder float32 sums, and with beta1 = 0 Adam's step is g / |g| per
  element, so rounding-level gradient differences become full +-lr steps.
- FP32_FORWARD_ATOL: float32 outputs of G (in [-1, 1]) and D logits (|logit| < 5) at init: one
  forward from identical weights, whose rounding no training trajectory amplifies.
"""

import numpy as np
import pytest

from ganbench.archs import build_spec
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.rng import normal_noise
from ganbench.step_inputs import STEP_PARTS, StepInputs

FP64_STEP_RTOL = 1e-9
FP32_FORWARD_ATOL = 1e-4

CASES = [  # (model, size, loss, width)
    ("sngan_cnn", 32, "hinge", 0.125),
    ("sngan_cnn", 48, "hinge", 0.125),
    ("sngan_resnet", 32, "hinge", 0.125),
    ("sngan_resnet", 48, "hinge", 0.0625),
    ("wgan_gp_resnet", 32, "wgan-gp", 0.125),
    ("sngan_cnn", 32, "minimax", 0.125),
    ("sngan_resnet", 32, "ns", 0.0625),
    ("sngan_cnn", 32, "ls", 0.125),
]
BATCH, N_DIS = 8, 2


def rel_norm(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)


def worst(a, b):
    return max((rel_norm(a["nets"][k][n], b["nets"][k][n]), f"{k}.{n}") for k in a["nets"] for n in a["nets"][k])


def setup(model, size, loss, width, seed=0):
    spec = build_spec(model, 3, size, width)
    return spec, {"nets": init_gan(spec, seed)}, TrainConfig(loss=loss, n_dis=N_DIS, beta1=0.0, beta2=0.9)


def step_inputs(spec, loss, s):
    rng = np.random.default_rng(s)
    size = spec.image_shape[1]
    return StepInputs(
        reals=rng.uniform(-1, 1, (N_DIS, BATCH, size, size, 3)).astype(np.float32),
        z=normal_noise(0, 2, (N_DIS, BATCH, spec.z_dim), s),
        z_g=normal_noise(0, 3, (2 * BATCH, spec.z_dim), s),
        alphas=rng.uniform(0, 1, (N_DIS, BATCH)).astype(np.float32) if loss == "wgan-gp" else None,
    )


def train(gans, spec, loss, steps):
    losses = []
    for s in range(steps):
        for gan in gans:
            gan.set_lr_factor(1.0 - s / 10)
        losses.append([gan.train_step(step_inputs(spec, loss, s)) for gan in gans])
    return losses


@pytest.fixture(scope="module")
def backends():
    return get_backend("torch"), get_backend("tf")


@pytest.mark.parametrize("model, size, loss, width", CASES)
def test_training_steps_float64(backends, model, size, loss, width):
    spec, state, hp = setup(model, size, loss, width)
    gans = [b.GAN(spec, state, hp, device="cpu", dtype="float64") for b in backends]
    for la, lb in train(gans, spec, loss, 3):
        assert la.keys() == lb.keys()
        for key in la:
            assert la[key] == pytest.approx(lb[key], rel=1e-9, abs=1e-10), key  # g losses near 0 cancel
    a, b = (gan.export_state() for gan in gans)
    err, name = worst(a, b)
    assert err < FP64_STEP_RTOL, name
    moved = rel_norm(state["nets"]["D"]["block1_c1.weight" if "resnet" in model else "conv1.weight"],
                     a["nets"]["D"]["block1_c1.weight" if "resnet" in model else "conv1.weight"])
    assert moved > 1e-4  # D really trained
    if spec.discriminator.buffer_shapes():  # spectral-norm vectors moved with it, identically
        u = next(n for n in a["nets"]["D"] if n.endswith("sn_u"))
        assert rel_norm(state["nets"]["D"][u], a["nets"]["D"][u]) > 1e-6


@pytest.mark.parametrize("model, size, loss, width", CASES[:5])
@pytest.mark.parametrize("training", [False, True])
def test_forwards_float32(backends, model, size, loss, width, training):
    spec, state, hp = setup(model, size, loss, width)
    gans = [b.GAN(spec, state, hp, device="cpu") for b in backends]
    z = normal_noise(0, 99, (BATCH, spec.z_dim))
    fakes = [gan.generate(z, training) for gan in gans]
    assert fakes[0].shape == (BATCH, size, size, 3)
    assert np.abs(fakes[0] - fakes[1]).max() < FP32_FORWARD_ATOL
    assert np.std(fakes[0]) > 1e-5  # small at init in eval mode (running stats are 0 / 1)
    images = np.random.default_rng(5).uniform(-1, 1, (BATCH, size, size, 3)).astype(np.float32)
    logits = [gan.discriminate(images, training) for gan in gans]
    assert np.abs(logits[0] - logits[1]).max() < FP32_FORWARD_ATOL
    assert np.std(logits[0]) > 1e-4


@pytest.mark.parametrize("backend, mode", [("torch", "compiled"), ("tf", "compiled")])
@pytest.mark.parametrize("model, loss", [("sngan_resnet", "hinge"), ("wgan_gp_resnet", "wgan-gp")])
def test_compiled_modes_compute_the_same_steps(backend, mode, model, loss):
    """torch.compile (the WGAN-GP penalty's forward stays eager) and XLA (penalty included)."""
    if backend == "torch":
        import torch._dynamo

        torch._dynamo.reset()  # a fresh cache: another model's recompiles must not push this one to eager
    module = get_backend(backend)
    spec, state, hp = setup(model, 32, loss, 0.125)
    gans = [module.GAN(spec, state, hp, device="cpu", dtype="float64"),
            module.GAN(spec, state, hp, device="cpu", dtype="float64", mode=mode)]
    for la, lb in train(gans, spec, loss, 2):
        assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=FP64_STEP_RTOL)
    err, name = worst(*(gan.export_state() for gan in gans))
    assert err < FP64_STEP_RTOL, name


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("model, loss", [("sngan_resnet", "hinge"), ("wgan_gp_resnet", "wgan-gp")])
def test_bench_parts_run_in_order_are_the_training_step(backend, model, loss):
    """`ganbench bench` times the step that training runs: its parts (the D updates' fakes, the
    n_dis D updates with the penalty, the G update on a fresh batch), each run once in order, leave
    the same weights as train_step (float64, tf parts in graph mode)."""
    module = get_backend(backend)
    spec, state, hp = setup(model, 32, loss, 0.125)
    stepped, parted = (module.GAN(spec, state, hp, device="cpu", dtype="float64") for _ in range(2))
    inputs = step_inputs(spec, loss, 0)
    stepped.train_step(inputs)
    parts = parted.phase_fns(inputs)
    assert tuple(parts) == STEP_PARTS
    for part in parts.values():
        part()
    err, name = worst(stepped.export_state(), parted.export_state())
    assert err < FP64_STEP_RTOL, name
    assert worst(stepped.export_state(), {"nets": state["nets"]})[0] > 1e-4  # the step moved the weights
