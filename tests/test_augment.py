"""DiffAugment (ganbench.augment): a numpy oracle of each policy, written the plain way (pads and
slices, the reference's ranges), against the transform both backends run at the D-call seam; keyed
draws; and whole training steps in float64, identical across backends with every D call augmented.

Tolerances: AUGMENT_RTOL for one float64 transform against numpy (translation and cutout move and
clear pixels exactly; colour's means are sums in another order); FP64_STEP_RTOL (test_parity_models)
for weights after training steps; EFFECT: the least relative change augmentation must make."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from ganbench import augment
from ganbench.backends import get_backend
from ganbench.errors import GanbenchError
from ganbench.rng import STREAM_AUGMENT
from test_parity_models import BATCH, FP64_STEP_RTOL, N_DIS, setup, step_inputs, worst

AUGMENT_RTOL = 1e-12
EFFECT = 1e-3
ALL = ("color", "translation", "cutout")


def numpy_diffaugment(x: np.ndarray, policies: tuple, rng: np.random.Generator) -> np.ndarray:
    """NHWC float64 images augmented as the DiffAugment paper's code does, drawing from `rng` in
    augment.draw_args' order: per policy, all images at once."""
    n, h = x.shape[0], x.shape[1]
    for policy in policies:
        if policy == "color":
            u = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32).astype(np.float64)[:, :, None, None, None]  # as args carry them
            x = x + (u[:, 0] - 0.5)
            mean = x.mean(axis=3, keepdims=True)
            x = (x - mean) * (u[:, 1] * 2) + mean
            mean = x.mean(axis=(1, 2, 3), keepdims=True)
            x = (x - mean) * (u[:, 2] + 0.5) + mean
        elif policy == "translation":
            limit = int(h * 0.125 + 0.5)
            shifts = rng.integers(-limit, limit + 1, (n, 2))
            padded = np.pad(x, ((0, 0), (limit, limit), (limit, limit), (0, 0)))
            x = np.stack([padded[k, limit + dy:limit + dy + h, limit + dx:limit + dx + h]
                          for k, (dy, dx) in enumerate(shifts)])
        else:
            side = int(h * 0.5 + 0.5)
            centres = rng.integers(0, h + (1 - side % 2), (n, 2))
            x = x.copy()
            for k, (cy, cx) in enumerate(centres):
                top, left = cy - side // 2, cx - side // 2
                x[k, max(top, 0):max(top + side, 0), max(left, 0):max(left + side, 0)] = 0.0
    return x


def backend_transform(backend: str, x_nhwc: np.ndarray, layout, args: np.ndarray) -> np.ndarray:
    get_backend(backend)  # the frameworks' import order
    transform = augment.diffaugment(layout)
    if backend == "torch":
        import torch

        from ganbench.backends.torch.losses import OPS

        out = transform(OPS, torch.from_numpy(np.moveaxis(x_nhwc, -1, 1).copy()), torch.from_numpy(args))
        return np.moveaxis(out.numpy(), 1, -1)
    import tensorflow as tf

    from ganbench.backends.tf.losses import OPS

    return transform(OPS, tf.constant(x_nhwc), tf.constant(args)).numpy()


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("policies", [("color",), ("translation",), ("cutout",), ALL], ids="-".join)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_policy_matches_numpy(backend, policies, channels):
    size, n = 16, 12
    x = np.random.default_rng(1).uniform(-1, 1, (n, size, size, channels))
    layout = augment.Layout(policies, channels, size)
    args = augment.draw_args(layout, np.random.default_rng(7), n).astype(np.float64)
    expected = numpy_diffaugment(x, policies, np.random.default_rng(7))
    got = backend_transform(backend, x, layout, args)
    np.testing.assert_allclose(got, expected, rtol=AUGMENT_RTOL, atol=1e-15)
    assert not np.allclose(got, x)


def test_the_reference_ranges():
    """Shifts up to 1/8 of the size each way, every one reached; cutout squares of half the size."""
    layout = augment.Layout(("translation", "cutout"), 1, 32)
    args = augment.draw_args(layout, np.random.default_rng(0), 4000)
    def shift(matrix):  # row i one-hot at i + shift
        row = int(np.argmax(matrix.any(axis=1)))
        return int(np.argmax(matrix[row])) - row

    assert {shift(m) for m in args[:, :32 * 32].reshape(-1, 32, 32)} == set(range(-4, 5))
    cleared = 32 * 32 - args[:, 2 * 32 * 32:].sum(axis=1)
    assert cleared.max() == 16 * 16 and cleared.min() >= 8 * 8  # a whole square, or one clipped at a corner


def test_draws_are_keyed_on_seed_and_step():
    layout = augment.Layout(ALL, 3, 32)
    first = augment.step_args(layout, 0, STREAM_AUGMENT, 5, 2, 8, 4)
    assert [a.shape for a in first] == [(2, augment.CALLS_PER_D_UPDATE, 8, layout.width), (4, layout.width)]
    assert all(np.array_equal(a, b) for a, b in zip(first, augment.step_args(layout, 0, STREAM_AUGMENT, 5, 2, 8, 4)))
    assert not np.array_equal(first[0], augment.step_args(layout, 0, STREAM_AUGMENT, 6, 2, 8, 4)[0])
    assert not np.array_equal(first[0], augment.step_args(layout, 1, STREAM_AUGMENT, 5, 2, 8, 4)[0])


def test_unknown_policy_is_one_clear_error():
    assert augment.parse_policy(" cutout,color ") == ("color", "cutout")  # applied in the fixed order
    with pytest.raises(GanbenchError, match="unknown DiffAugment policy 'flip' \\(choose from color, translation, cutout"):
        augment.parse_policy("color,flip")


def train(backend, model, loss, policies: str):
    spec, state, config = setup(model, 32, loss, 0.125)
    config = config.replace(diffaugment=policies)
    gan = get_backend(backend).GAN(spec, state, config, dtype="float64", mode="eager")
    layout = augment.Layout(augment.parse_policy(policies), *spec.image_shape[:2])
    for s in range(2):
        inputs = step_inputs(spec, loss, s)
        if policies:
            d_args, g_args = augment.step_args(layout, 0, STREAM_AUGMENT, s, N_DIS, BATCH, len(inputs.z_g))
            inputs = dataclasses.replace(inputs, transform_args=d_args, g_transform_args=g_args)
        gan.train_step(inputs)
    return gan.export_state()


@pytest.mark.parametrize("model,loss", [("sngan_cnn", "hinge"), ("wgan_gp_resnet", "wgan-gp")])
def test_training_with_diffaugment_is_identical_in_both_backends(model, loss):
    """Every D call augmented (the penalty's interpolates too, and G's update through D): float64
    steps equal across backends, and unlike the same steps unaugmented."""
    torch_state, tf_state = (train(b, model, loss, "color,translation,cutout") for b in ("torch", "tf"))
    gap, where = worst(torch_state, tf_state)
    assert gap <= FP64_STEP_RTOL, f"{model}: {where} differs by {gap:.2e}"
    plain = train("torch", model, loss, "")
    assert worst(plain, torch_state)[0] >= EFFECT


def test_train_records_the_policy_and_refuses_an_unknown_one(tmp_path, data_dir):
    """As a user runs it, beside the other options of the quality work (ls loss, lazy R1, bCR, a data
    limit)."""
    out = tmp_path / "run"
    base = [sys.executable, "-m", "ganbench", "train", "--out", str(out), "--data-dir", str(data_dir), "--steps", "2",
            "--batch-size", "8", "--sample-every", "1000", "--no-progress"]
    done = subprocess.run(base + ["--diffaugment", "translation,cutout", "--loss", "ls", "--r1", "0.5", "--reg-every", "2",
                                  "--log-every", "1", "--data-limit", "500", "--cr", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert (config["diffaugment"], config["loss"], config["r1"], config["reg_every"], config["data_limit"], config["cr"]) == \
        ("translation,cutout", "ls", 0.5, 2, 500, 2.0)
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert ["r1" in record for record in logged if "d_loss" in record] == [True, False]  # steps 1 and 2: lazy
    assert all(record["cr"] > 0 for record in logged if "d_loss" in record)
    bad = subprocess.run(base + ["--diffaugment", "zoom", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "ganbench: error: unknown DiffAugment policy 'zoom' (choose from color, translation, cutout, comma-separated)"]
    assert not (tmp_path / "bad").exists()
