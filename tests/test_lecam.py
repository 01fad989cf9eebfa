"""LeCam regularisation (--lecam, --lecam-decay): a numpy oracle of the penalty in both backends,
float64 training steps equal across backends (weights and the moving averages), and its averages
as state: checkpointed, validated on load, and resumed exactly.

Tolerances: LOSS_RTOL (test_losses_gan) for the penalty against numpy and for the averages across
backends; FP64_STEP_RTOL (test_parity_models) for weights; EFFECT: the least relative change the
regularisation must make to some weight."""

import numpy as np
import pytest

from ganbench import checkpoint, losses
from ganbench.backends import get_backend
from ganbench.errors import GanbenchError
from test_losses_gan import LOSS_RTOL, backend_losses
from test_parity_models import FP64_STEP_RTOL, setup, step_inputs, worst

EFFECT = 1e-3


def relu(x):
    return np.maximum(x, 0.0)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_lecam_penalty_matches_numpy(backend):
    backend_module, to, back = backend_losses(backend)
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((16, 1)), rng.standard_normal((16, 1)) - 0.5
    expected = (relu(real - 0.2) ** 2).mean() + (relu(0.4 - fake) ** 2).mean()
    got = losses.lecam_penalty(backend_module.OPS, to(real), to(fake), 0.4, 0.2)
    assert back(got) == pytest.approx(expected, rel=LOSS_RTOL)


def gan_for(backend, lecam, state=None):
    spec, fresh, config = setup("sngan_cnn", 32, "hinge", 0.125)
    config = config.replace(lecam=lecam, lecam_decay=0.9)
    return spec, get_backend(backend).GAN(spec, state or fresh, config, dtype="float64", mode="eager")


def train(backend, lecam, steps=range(3), state=None):
    spec, gan = gan_for(backend, lecam, state)
    for s in steps:
        assert ("lecam" in gan.train_step(step_inputs(spec, "hinge", s))) == bool(lecam)
    return gan.export_state()


def test_lecam_trains_identically_in_both_backends():
    torch_state, tf_state = train("torch", 0.3), train("tf", 0.3)
    gap, where = worst(torch_state, tf_state)
    assert gap <= FP64_STEP_RTOL, f"{where} differs by {gap:.2e}"
    assert torch_state["lecam"]["updates"] == tf_state["lecam"]["updates"] == 3 * 2  # n_dis D updates a step
    for name in ("real", "fake"):
        assert tf_state["lecam"][name] == pytest.approx(torch_state["lecam"][name], rel=LOSS_RTOL)
    assert worst(train("torch", 0.0), torch_state)[0] >= EFFECT


def test_its_averages_are_checkpointed_and_resume_exactly(tmp_path):
    """Two steps, then one more from the exported state (in the other backend): the same as three
    straight, and not without the averages. The checkpoint keeps them exactly (its float32 weights
    are what resume's own test covers)."""
    spec, gan = gan_for("torch", 0.3)
    for s in range(2):
        gan.train_step(step_inputs(spec, "hinge", s))
    state = gan.export_state()
    path = checkpoint.save(tmp_path, 2, state, gan.hp, spec, {"backend": "torch"})
    assert checkpoint.load(path, spec_for=lambda meta: spec).state["lecam"] == state["lecam"]
    straight = train("torch", 0.3)
    resumed = train("tf", 0.3, steps=[2], state=state)
    assert worst(straight, resumed)[0] <= FP64_STEP_RTOL
    assert resumed["lecam"]["updates"] == straight["lecam"]["updates"]
    assert resumed["lecam"]["real"] == pytest.approx(straight["lecam"]["real"], rel=LOSS_RTOL)
    forgotten = train("torch", 0.3, steps=[2], state={key: value for key, value in state.items() if key != "lecam"})
    assert worst(straight, forgotten)[0] > FP64_STEP_RTOL


@pytest.mark.parametrize("lecam", [{"real": "0.1", "fake": 0.0, "updates": 1}, {"real": 0.1, "updates": 1},
                                   {"real": float("inf"), "fake": 0.0, "updates": 1}, [0.1, 0.2, 1]])
def test_a_damaged_lecam_record_is_refused(lecam):
    with pytest.raises(GanbenchError, match="lecam"):
        checkpoint.check_lecam(lecam, "ckpt.safetensors")
