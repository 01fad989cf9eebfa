"""Every preset trains in both backends (reduced width, synthetic files in the published formats);
SNGAN runs resume exactly, spectral-norm vectors included; presets are checked like configs."""

import json

import numpy as np
import pytest

import ganbench.api

from ganbench import checkpoint
from ganbench.archs import build_spec
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.presets import apply_preset, preset_names, read_preset
from ganbench.training import loop
from ganbench.training.inputs import draw_step_inputs

from binary_files import write_cifar, write_stl

SMALL = dict(width=0.0625, batch_size=8, batch_size_g=8, steps=2, sample_every=2, checkpoint_every=2, log_every=1)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_cifar(root)
    write_stl(root, n=16)
    return root


def test_the_papers_presets_exist_and_validate():
    assert preset_names() == ["biggan_cifar10", "biggan_cpu", "dcgan", "dcgan_pytorch_example", "dcgan_tf_tutorial", "sngan_cifar10",
                              "sngan_cnn_cifar10", "sngan_cpu", "sngan_stl10", "wgan_gp_cifar10"]
    biggan = apply_preset(TrainConfig(), "biggan_cifar10").validate()
    assert (biggan.model, biggan.loss, biggan.n_dis, biggan.batch_size, biggan.lr_g, biggan.lr_d, biggan.beta1,
            biggan.beta2, biggan.eps, biggan.ema_decay, biggan.ema_start, biggan.hflip, biggan.steps) == (
        "biggan", "hinge", 5, 64, 2e-4, 2e-4, 0.5, 0.999, 1e-6, 0.9999, 1000, True, 100000)
    small = apply_preset(TrainConfig(), "biggan_cpu").validate()  # the README's 20-CPU-minute runs
    assert (small.model, small.width, small.loss, small.n_dis, small.batch_size, small.lr_g, small.lr_d, small.beta1,
            small.eps, small.ema_decay, small.ema_start, small.hflip, small.steps) == (
        "biggan", 0.125, "hinge", 1, 16, 2e-4, 4e-4, 0.5, 1e-6, 0.999, 2000, False, 7000)
    cpu = apply_preset(TrainConfig(), "sngan_cpu").validate()  # docs/results.md's 10-CPU-minute MNIST runs
    assert (cpu.model, cpu.dataset, cpu.width, cpu.loss, cpu.n_dis, cpu.batch_size, cpu.batch_size_g, cpu.lr_g, cpu.lr_d,
            cpu.beta1, cpu.beta2, cpu.ema_decay, cpu.ema_start, cpu.steps) == (
        "sngan_cnn", "mnist", 0.25, "hinge", 1, 8, 0, 2e-4, 4e-4, 0.5, 0.999, 0.995, 2000, 20000)
    assert read_preset("dcgan-tf-tutorial") == read_preset("dcgan_tf_tutorial")
    sngan = apply_preset(TrainConfig(), "sngan_cifar10").validate()
    assert (sngan.model, sngan.loss, sngan.lr_g, sngan.beta1, sngan.beta2, sngan.n_dis, sngan.batch_size,
            sngan.steps, sngan.lr_decay) == ("sngan_resnet", "hinge", 2e-4, 0.0, 0.9, 5, 64, 100000, "linear")
    wgan = apply_preset(TrainConfig(), "wgan_gp_cifar10").validate()
    assert (wgan.loss, wgan.gp_lambda, wgan.batch_size, wgan.batch_size_g) == ("wgan-gp", 10.0, 64, 128)
    assert apply_preset(TrainConfig(), "sngan_stl10").image_size == 48


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("preset", ["sngan_cifar10", "sngan_cnn_cifar10", "sngan_stl10", "wgan_gp_cifar10",
                                    "biggan_cifar10", "sngan_cpu"])
def test_every_preset_trains_in_both_backends(tmp_path, tiny_data, preset, backend):
    config = apply_preset(TrainConfig(), preset).replace(backend=backend, **SMALL)
    last = loop.train(config, tmp_path / "run", data_dir=tiny_data, progress=False)
    state, meta, _, _ = checkpoint.load(last)
    size = 48 if preset == "sngan_stl10" else 32
    assert meta["config"]["image_size"] == size and meta["config"]["channels"] == (1 if config.dataset == "mnist" else 3)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in log)
    assert ("gp" in log[0]) == (config.loss == "wgan-gp")
    assert state["opt"]["D"]["step"] == 2 * config.n_dis and state["opt"]["G"]["step"] == 2
    assert ("G_ema" in state["nets"]) == (config.ema_decay > 0)


def test_sngan_resume_is_exact_including_spectral_norm_vectors(tmp_path, tiny_data):
    # no decay here: a run first given 2 steps then extended to 4 has another schedule
    # (lr_factor, tested below, is a pure function of the step)
    config = apply_preset(TrainConfig(), "sngan_cifar10").replace(**{**SMALL, "steps": 4, "n_dis": 2},
                                                                   lr_decay="none")
    straight = loop.train(config, tmp_path / "a", data_dir=tiny_data, progress=False)
    loop.train(config.replace(steps=2), tmp_path / "b", data_dir=tiny_data, progress=False)
    resumed = loop.train(config, tmp_path / "b", resume=True, data_dir=tiny_data, progress=False)
    a = checkpoint.load(straight).state
    b = checkpoint.load(resumed).state
    fa, fb = checkpoint.flatten_state(a), checkpoint.flatten_state(b)
    assert "D.block1_c1.sn_u" in fa and "D.fc.sn_v" in fa
    for name in fa:
        assert np.array_equal(fa[name], fb[name]), name


def test_linear_decay_reaches_zero_at_the_last_step():
    config = TrainConfig(steps=4, lr_decay="linear")
    assert [loop.lr_factor(config, s) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert loop.lr_factor(config.replace(lr_decay="none"), 3) == 1.0


def test_step_inputs_draw_g_noise_and_alphas_from_their_own_streams():
    from ganbench import data

    stream = data.BatchStream(np.zeros((40, 32, 32, 1), np.uint8), 8, 0)
    config = TrainConfig(loss="wgan-gp", n_dis=3, batch_size=8, batch_size_g=16)
    spec = build_spec("sngan_resnet", 1, 32, 0.125)
    inputs = draw_step_inputs(config, stream, spec, step=5)
    assert inputs.reals.shape == (3, 8, 32, 32, 1) and inputs.z.shape == (3, 8, 128)
    assert inputs.z_g.shape == (16, 128) and inputs.alphas.shape == (3, 8)
    assert 0 <= inputs.alphas.min() and inputs.alphas.max() <= 1
    assert not np.allclose(inputs.z_g[:8], inputs.z[0])
    again = draw_step_inputs(config, stream, spec, step=5)
    assert all(np.array_equal(getattr(inputs, k), getattr(again, k)) for k in ("reals", "z", "z_g", "alphas"))
    plain = draw_step_inputs(TrainConfig(batch_size=8), stream, spec, step=5)
    assert (plain.z_g, plain.alphas, plain.dropout_key) == (None, None, None)
    tutorial = draw_step_inputs(TrainConfig(batch_size=8), stream, build_spec("dcgan_tf_tutorial", 1, 28), step=5)
    assert (tutorial.z_g, tutorial.alphas) == (None, None) and 0 <= tutorial.dropout_key < 2**32


@pytest.mark.parametrize("text, message", [
    ('{"model": "sngan_resnet", "lossy": "hinge"}', "unknown config key"),
    ('{"n_dis": "5"}', "config key 'n_dis' must be int"),
    ('[1, 2]', "a preset must be a JSON object, got a list"),
    ('{"n_dis": ', r"p.json: not valid JSON \(Expecting value"),
    ('{"n_dis": 10000000000000000000000}', "config key 'n_dis' is out of range"),
    ('{"lr_g": NaN}', None),  # a float: the type is right, validate() refuses the value
    ('{"a": ' * 40 + '1' + '}' * 40, "nested more than 32 levels deep"),
    ('\udcff', "not valid JSON"),
])
def test_bad_preset_files_are_refused(tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    if message is None:
        with pytest.raises(GanbenchError, match="lr-g must be positive and finite, got nan"):
            ganbench.api.resolve(str(path))
        return
    with pytest.raises(GanbenchError, match=message):
        read_preset(str(path))


def test_unknown_preset_names_the_choices():
    with pytest.raises(GanbenchError, match="unknown preset 'sngan' .choose from biggan_cifar10, biggan_cpu, dcgan, "):
        read_preset("sngan")
