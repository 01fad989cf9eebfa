"""Mixed precision (ganbench.precision): bf16 and fp16 forwards against float32 and across
backends, fp16's loss scaling against GradScaler's rule with an injected overflow, float32
checkpoints that resume in another precision, and a short bf16 run that learns."""

import json

import numpy as np
import pytest

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.model import spec_for_config
from ganbench.precision import (BACKOFF_FACTOR, GROWTH_INTERVAL, INITIAL_SCALE, next_loss_scale, python_where)
from ganbench.training import loop
from ganbench.training.inputs import draw_step_inputs

BACKENDS = ("torch", "tf")
# max |difference| over the output, relative to max |output| in float32: bf16 keeps 8 bits of
# mantissa (relative rounding 2^-9 per element), fp16 11 bits. Results stay in the low precision
# from layer to layer up to the network's output, so the rounding compounds over a dozen layers
# (BatchNorm, activations and sums included): the worst element of BigGAN's images was 6.3% off
# in bf16, the root mean square 1.8% (fp16: 0.7% and 0.3%)
LOW_VS_FP32 = {"bf16": 0.1, "fp16": 0.01}
LOW_VS_FP32_RMS = {"bf16": 0.025, "fp16": 0.005}  # root mean square |difference| over that of the output
# the two backends round the same products in a different order and accumulate differently
LOW_ACROSS_BACKENDS = {"bf16": 0.05, "fp16": 0.01}
MODELS = {"dcgan": {}, "biggan": dict(width=0.0625), "wgan_gp_resnet": dict(width=0.0625, loss="wgan-gp")}


def forwards(model: str, precision: str) -> dict:
    """{backend: (G's training-mode output, D's logits on it)} from the same weights and noise."""
    config = TrainConfig(model=model, precision=precision, **MODELS[model])
    spec = spec_for_config(config.replace(image_size=32, channels=1))
    state = {"nets": init_gan(spec, 0)}
    z = np.random.default_rng(0).standard_normal((8, spec.z_dim)).astype(np.float32)
    labels = np.arange(8) % spec.num_classes if spec.conditional else None
    out = {}
    for backend in BACKENDS:
        gan = get_backend(backend).GAN(spec, state, config.replace(backend=backend))
        images = gan.generate(z, training=True, labels=labels)
        out[backend] = images, gan.discriminate(images, training=False, labels=labels)
    return out


def relative(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def relative_rms(a, b) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_forward_is_close_to_fp32_and_across_backends(model, precision):
    full, low = forwards(model, "fp32"), forwards(model, precision)
    for backend in BACKENDS:
        for part in (0, 1):  # G's images, D's logits
            error = relative(low[backend][part], full[backend][part])
            assert 1e-5 < error < LOW_VS_FP32[precision], (backend, part, error)  # it did compute in low precision
            rms = relative_rms(low[backend][part], full[backend][part])
            assert rms < LOW_VS_FP32_RMS[precision], (backend, part, rms)
    for part in (0, 1):
        assert relative(low["tf"][part], low["torch"][part]) < LOW_ACROSS_BACKENDS[precision]


# BatchNorm's running statistics after one bf16 training forward of G against fp32's: the same
# float32 arithmetic, on inputs rounded to bf16 (max |difference| relative to max |statistic|)
RUNNING_STATS_RTOL = 0.02


def batch_norm_inputs(backend: str, monkeypatch) -> list:
    """The dtypes BatchNorm layers receive from now on, as names ("bfloat16", "float32")."""
    if backend == "torch":
        from ganbench.backends.torch import nets
        method = "forward"
    else:
        get_backend("tf")
        from ganbench.backends.tf import nets
        method = "__call__"
    seen, original = [], getattr(nets.BatchNorm, method)

    def recording(self, x, *args):
        seen.append(x.dtype.name if backend == "tf" else str(x.dtype).removeprefix("torch."))
        return original(self, x, *args)

    monkeypatch.setattr(nets.BatchNorm, method, recording)
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_results_flow_into_batchnorm_which_keeps_float32_statistics(backend, monkeypatch):
    """The rule's shape (ganbench.precision): BatchNorm receives the bf16 results of the layers
    before it, as under torch.autocast, keeps float32 running statistics close to fp32's, and G's
    images come back in float32."""
    seen = batch_norm_inputs(backend, monkeypatch)
    runs = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(model="dcgan", precision=precision, backend=backend)
        spec = spec_for_config(config.replace(image_size=32, channels=1))
        gan = get_backend(backend).GAN(spec, {"nets": init_gan(spec, 0)}, config)
        z = np.random.default_rng(0).standard_normal((8, spec.z_dim)).astype(np.float32)
        seen.clear()
        images = gan.generate(z, training=True)
        runs[precision] = images, gan.export_state()["nets"]["G"], list(seen)
    images, stats, dtypes = runs["bf16"]
    assert images.dtype == np.float32 and runs["fp32"][0].dtype == np.float32
    assert len(dtypes) == 3 and set(dtypes) == {"bfloat16"} and set(runs["fp32"][2]) == {"float32"}
    running = [name for name in stats if "running_" in name]
    assert len(running) == 6
    for name in running:
        assert stats[name].dtype == np.float32
        assert relative(stats[name], runs["fp32"][1][name]) < RUNNING_STATS_RTOL, name


def test_loss_scale_rule_is_gradscalers():
    scale, tracker = INITIAL_SCALE, 0
    scale, tracker = next_loss_scale(scale, tracker, False, python_where)
    assert (scale, tracker) == (INITIAL_SCALE * BACKOFF_FACTOR, 0)
    for _ in range(GROWTH_INTERVAL - 1):
        scale, tracker = next_loss_scale(scale, tracker, True, python_where)
    assert (scale, tracker) == (INITIAL_SCALE * BACKOFF_FACTOR, GROWTH_INTERVAL - 1)
    assert next_loss_scale(scale, tracker, True, python_where) == (INITIAL_SCALE, 0)  # doubled at the interval


def fp16_gan(backend: str, scales: dict | None = None, **changes):
    config, spec, stream = loop.prepare_data(TrainConfig(backend=backend, precision="fp16", batch_size=8,
                                                         **changes), None)
    state = {"nets": init_gan(spec, 0), **({"loss_scales": scales} if scales else {})}
    return get_backend(backend).GAN(spec, state, config), config, spec, stream


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_fp16_overflow_skips_the_step_in_both_backends_alike(loss):
    """A loss scale of 2^40 overflows fp16 in the backward: both networks' updates are skipped
    (weights, Adam and the EMA untouched), both scales halve, and the backends agree."""
    huge = {key: {"scale": 2.0**40, "tracker": 7, "skipped": 0} for key in ("G", "D")}
    results = {}
    for backend in BACKENDS:
        gan, config, spec, stream = fp16_gan(backend, huge, loss=loss, ema_decay=0.9)
        before = gan.export_state()
        out = gan.train_step(draw_step_inputs(config, stream, spec, 0))
        after = gan.export_state()
        for key in ("G", "D", "G_ema"):
            for name, value in before["nets"][key].items():
                if "running" not in name and "num_batches" not in name and ".sn_" not in name:
                    assert np.array_equal(after["nets"][key][name], value), (backend, key, name)
        assert after["opt"]["G"]["step"] == after["opt"]["D"]["step"] == 0
        assert after["loss_scales"] == {key: {"scale": 2.0**39, "tracker": 0, "skipped": 1} for key in ("G", "D")}
        assert (out["loss_scale_d"], out["loss_scale_g"], out["skipped_updates"]) == (2.0**39, 2.0**39, 2)
        results[backend] = after["loss_scales"]
    assert results["torch"] == results["tf"]


def test_fp16_finite_steps_grow_the_tracker_and_update():
    for backend in BACKENDS:
        gan, config, spec, stream = fp16_gan(backend, {key: {"scale": 1.0, "tracker": 0, "skipped": 0}
                                                       for key in ("G", "D")})
        gan.train_step(draw_step_inputs(config, stream, spec, 0))
        state = gan.export_state()
        assert state["opt"]["G"]["step"] == state["opt"]["D"]["step"] == 1
        assert state["loss_scales"]["D"] == {"scale": 1.0, "tracker": 1, "skipped": 0}


def test_checkpoints_stay_float32_and_resume_in_another_precision(tmp_path, data_dir):
    """bf16 -> fp32 -> fp16 on one run: every checkpoint tensor float32; the fp16 leg's loss
    scales are saved with its checkpoint and restored by a resume."""
    run = tmp_path / "run"
    common = dict(batch_size=8, checkpoint_every=1, sample_every=100, log_every=1)
    loop.train(TrainConfig(steps=1, precision="bf16", **common), run, data_dir=data_dir, progress=False)
    loop.train(TrainConfig(steps=2, precision="fp32", **common), run, resume=True, data_dir=data_dir, progress=False)
    last = loop.train(TrainConfig(steps=3, precision="fp16", **common), run, resume=True, data_dir=data_dir,
                      progress=False)
    loaded = checkpoint.load(last)
    assert loaded.meta["config"]["precision"] == "fp16" and loaded.meta["step"] == 3
    assert set(loaded.state["loss_scales"]) == {"G", "D"}
    from safetensors.numpy import load_file

    assert {v.dtype for v in load_file(str(last)).values()} == {np.dtype(np.float32)}
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "loss_scale_d" in records[-1] and "loss_scale_d" not in records[0]
    gan = get_backend("tf").GAN(loaded.spec, loaded.state, TrainConfig(**loaded.meta["config"]).replace(backend="tf"))
    assert gan.export_state()["loss_scales"] == loaded.state["loss_scales"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_short_bf16_run_learns(backend, quick_classifier, data_dir, tmp_path):
    """dcgan on MNIST in bf16: losses finite throughout, and the classifier FD of 500 samples
    falls from step 20 to step 150."""
    config = TrainConfig(backend=backend, precision="bf16", steps=150, batch_size=32, eval_every=65, eval_n=500,
                         sample_every=1000, checkpoint_every=1000, log_every=5)
    loop.train(config, tmp_path / "run", data_dir=data_dir, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r[k] for r in records for k in ("d_loss", "g_loss") if k in r]
    assert len(losses) == 60 and np.isfinite(losses).all()
    fids = [r["eval/fid"] for r in records if "eval/fid" in r]
    print(backend, "bf16 FD", fids)
    assert len(fids) == 3 and fids[-1] < 0.8 * fids[0], fids


def test_sampling_in_another_precision(tmp_path, data_dir):
    """A float32 checkpoint sampled in bf16: its recorded precision changes, its pixels barely."""
    from ganbench.sampling import load_generator

    last = loop.train(TrainConfig(steps=2, batch_size=8, sample_every=100), tmp_path / "run", data_dir=data_dir,
                      progress=False)
    for backend in BACKENDS:
        full, low = load_generator(last, backend), load_generator(last, backend, precision="bf16")
        assert (full.config.precision, low.config.precision) == ("fp32", "bf16")
        difference = np.abs(full.sample(16).astype(int) - low.sample(16).astype(int))
        assert 0 < difference.max() <= 8  # uint8 levels: bf16's ~2^-9 relative rounding through 5 layers


def test_the_penalty_under_a_loss_scale_is_the_penalty():
    """fp16 takes the penalty's inner gradient under the loss scale and divides it out: a power of
    two scales exactly, so in float32 the penalty is unchanged."""
    config = TrainConfig(model="wgan_gp_resnet", width=0.0625, loss="wgan-gp")
    spec = spec_for_config(config.replace(image_size=32, channels=1))
    rng = np.random.default_rng(1)
    real, fake = (rng.uniform(-1, 1, (4, 32, 32, 1)).astype(np.float32) for _ in range(2))
    alpha = rng.uniform(size=4).astype(np.float32)
    penalties = {}
    for backend in BACKENDS:
        gan = get_backend(backend).GAN(spec, {"nets": init_gan(spec, 0)}, config.replace(backend=backend))
        if backend == "torch":
            import torch

            from ganbench.backends.torch.losses import gradient_penalty

            tensors = [torch.from_numpy(a.transpose(0, 3, 1, 2).copy()) for a in (real, fake)]
            critic = lambda x: gan.D(x)  # noqa: E731
            values = [gradient_penalty(critic, *tensors, torch.from_numpy(alpha), s).item() for s in (None, 2.0**10)]
        else:
            from ganbench.backends.tf.losses import gradient_penalty

            critic = lambda x: gan.D(x, True)  # noqa: E731
            values = [float(gradient_penalty(critic, real, fake, alpha, s)) for s in (None, 2.0**10)]
        assert values[1] == pytest.approx(values[0], rel=1e-6)
        penalties[backend] = values[0]
    assert penalties["tf"] == pytest.approx(penalties["torch"], rel=1e-4)
