"""G's exponential moving average: a numpy oracle, both backends alike, checkpoints and sampling."""

import numpy as np
import pytest
from PIL import Image

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.ema import ema_weight
from ganbench.rng import normal_noise
from ganbench.sampling import generator_name, load_generator
from ganbench.step_inputs import StepInputs

EMA_RTOL = 1e-12  # float64: the oracle repeats the same few multiply-adds per element
HP = TrainConfig(ema_decay=0.9, ema_start=2)
STEPS = 5


def train(backend, spec, init_state, real_batches, dtype="float64"):
    """(GAN after STEPS steps, G's state after each step)."""
    gan = get_backend(backend).GAN(spec, init_state, HP, device="cpu", dtype=dtype)
    g_states = []
    for s in range(STEPS):
        gan.train_step(StepInputs(real_batches[s], normal_noise(0, 95, (1, 64, 100), s)))
        g_states.append(gan.export_state()["nets"]["G"])
    return gan, g_states


def test_ema_weight_copies_then_decays():
    assert [ema_weight(0.9, 2, t) for t in (1, 2, 3, 10)] == [0.0, 0.0, 0.9, 0.9]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_ema_follows_the_numpy_oracle(backend, spec, init_state, real_batches):
    gan, g_states = train(backend, spec, init_state, real_batches)
    ema = None
    for t, g in enumerate(g_states, start=1):
        w = 0.0 if t <= HP.ema_start else HP.ema_decay
        ema = {name: value.copy() for name, value in g.items()} if ema is None else {
            name: w * ema[name] + (1 - w) * g[name] for name in g}
    got = gan.export_state()["nets"]["G_ema"]
    assert got.keys() == ema.keys()  # weights and every buffer (BN running statistics)
    for name in ema:
        np.testing.assert_allclose(got[name], ema[name], rtol=EMA_RTOL, atol=1e-15, err_msg=name)
    assert not np.allclose(got["deconv1.weight"], g_states[-1]["deconv1.weight"])  # it lags behind G


def test_both_backends_average_alike(spec, init_state, real_batches):
    (torch_gan, _), (tf_gan, _) = (train(b, spec, init_state, real_batches) for b in ("torch", "tf"))
    a, b = torch_gan.export_state()["nets"]["G_ema"], tf_gan.export_state()["nets"]["G_ema"]
    for name in a:
        assert np.linalg.norm(a[name] - b[name]) <= 1e-9 * np.linalg.norm(a[name]), name


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory, spec, init_state, real_batches):
    gan, _ = train("torch", spec, init_state, real_batches, dtype="float32")
    out = tmp_path_factory.mktemp("ema") / "run"
    checkpoint.save(out, STEPS, gan.export_state(), HP.replace(steps=STEPS), spec, {"backend": "torch"})
    return out, gan.export_state()


def test_checkpoint_keeps_the_average_and_sampling_uses_it(ema_run):
    out, state = ema_run
    loaded = checkpoint.load(out).state
    assert np.array_equal(loaded["nets"]["G_ema"]["deconv1.weight"], state["nets"]["G_ema"]["deconv1.weight"])
    for backend in ("torch", "tf"):
        ema_gan, raw_gan = load_generator(out, backend).gan, load_generator(out, backend, use_ema=False).gan
        assert (generator_name(ema_gan), generator_name(raw_gan)) == ("ema", "raw")
        z = normal_noise(0, 94, (4, 100))
        assert not np.allclose(ema_gan.generate(z), raw_gan.generate(z), atol=1e-3)


def test_sample_and_eval_name_the_generator(ema_run, tmp_path, capsys):
    from ganbench.cli import main

    out, _ = ema_run
    assert main(["sample", "--checkpoint", str(out), "--n", "4", "--out", str(tmp_path / "ema.png")]) == 0
    assert main(["sample", "--checkpoint", str(out), "--n", "4", "--no-ema", "--out", str(tmp_path / "raw.png")]) == 0
    ema_png, raw_png = (np.asarray(Image.open(tmp_path / f"{k}.png"), np.int16) for k in ("ema", "raw"))
    assert np.abs(ema_png - raw_png).max() > 10


def test_averaged_spectral_norm_vectors_are_unit_vectors():
    """An SN model's G_ema keeps unit u and v (an average of turning unit vectors is shorter, and
    eval-mode spectral norm divides by u . W v), identically in both backends (float64)."""
    from ganbench.archs import build_spec
    from ganbench.init import init_gan

    spec = build_spec("biggan", 1, 32, 0.0625)
    hp = TrainConfig(model="biggan", loss="hinge", ema_decay=0.5, ema_start=0)
    rng = np.random.default_rng(0)
    gans = [get_backend(b).GAN(spec, {"nets": init_gan(spec, 0)}, hp, device="cpu", dtype="float64")
            for b in ("torch", "tf")]
    for s in range(3):
        step = StepInputs(rng.uniform(-1, 1, (1, 8, 32, 32, 1)), normal_noise(0, 9, (1, 8, 80), s),
                          labels=rng.integers(0, 10, (1, 8)), fake_labels=rng.integers(0, 10, (1, 8)))
        for gan in gans:
            gan.train_step(step)
    torch_ema, tf_ema = (gan.export_state()["nets"]["G_ema"] for gan in gans)
    vectors = [name for name in torch_ema if name.endswith(("sn_u", "sn_v"))]
    assert vectors
    for name in vectors:
        assert np.linalg.norm(torch_ema[name]) == pytest.approx(1.0, abs=1e-12), name
        np.testing.assert_allclose(torch_ema[name], tf_ema[name], rtol=1e-9, atol=1e-12, err_msg=name)
