"""BigGAN: the same model in both frameworks, numpy oracles of its new layers, conditional sampling
and evaluation.

Tolerances:
- FP64_STEP_RTOL: float64, every weight, BN buffer, spectral-norm vector, Adam moment and EMA
  tensor after 3 steps (n_dis 2, a fresh G batch, EMA on), relative Frobenius norm (measured
  ~1e-13). Float32 training is never compared across backends or modes (test_parity.py says why).
- FP32_FORWARD_ATOL: one float32 forward from identical weights: G's images in [-1, 1] and D's
  logits.
- ORACLE_RTOL: float64 layer outputs against numpy formulas.
"""

import dataclasses

import numpy as np
import pytest

from ganbench.archs import build_spec
from ganbench.archs import spec as S
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.rng import normal_noise
from ganbench.step_inputs import StepInputs

FP64_STEP_RTOL = 1e-9
FP32_FORWARD_ATOL = 1e-4
ORACLE_RTOL = 1e-10
WIDTH, BATCH, N_DIS = 0.0625, 8, 2
HP = TrainConfig(model="biggan", loss="hinge", n_dis=N_DIS, beta1=0.5, eps=1e-6, ema_decay=0.9, ema_start=1)


@pytest.fixture(scope="module")
def setup():
    spec = build_spec("biggan", 3, 32, WIDTH)
    return spec, {"nets": init_gan(spec, 0)}


def step_inputs(s: int) -> StepInputs:
    rng = np.random.default_rng(s)
    return StepInputs(reals=rng.uniform(-1, 1, (N_DIS, BATCH, 32, 32, 3)).astype(np.float32),
                      z=normal_noise(0, 2, (N_DIS, BATCH, 80), s), labels=rng.integers(0, 10, (N_DIS, BATCH)),
                      fake_labels=rng.integers(0, 10, (N_DIS, BATCH)), z_g=normal_noise(0, 3, (2 * BATCH, 80), s),
                      g_labels=rng.integers(0, 10, 2 * BATCH))


def rel_norm(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)


def every_tensor(state: dict) -> dict:
    out = {f"{k}.{n}": v for k, net in state["nets"].items() for n, v in net.items()}
    for key, opt in state["opt"].items():
        out.update({f"opt.{key}.{m}.{n}": v for m in ("exp_avg", "exp_avg_sq") for n, v in opt[m].items()})
    return out


def train(gans, steps: int) -> list:
    losses = []
    for s in range(steps):
        for gan in gans:
            gan.set_lr_factor(1.0 - s / 10)
        losses.append([gan.train_step(step_inputs(s)) for gan in gans])
    return losses


def test_the_architecture_is_studiogans(setup):
    """At width 1: StudioGAN's parameter counts (its training log: G 9,416,196, D 2,415,170), less
    the 3,456 biases of G's block convolutions, which a BatchNorm cancels (archs/biggan.py)."""
    full = build_spec("biggan", 3)
    count = lambda net: sum(int(np.prod(s)) for s in net.param_shapes().values())  # noqa: E731
    assert (count(full.generator), count(full.discriminator)) == (9_416_196 - 3 * 3 * 384, 2_415_170)
    assert full.z_dim == 80 and full.generator.prelude.chunks == 4 and full.num_classes == 10
    assert full.generator.param_shapes()["block1_bn1_gain.weight"] == (384, 128 + 20)
    assert "shared.sn_u" not in full.generator.buffer_shapes()  # no spectral norm on the shared embedding


def test_three_float64_steps_agree_across_backends(setup):
    spec, state = setup
    gans = [get_backend(b).GAN(spec, state, HP, device="cpu", dtype="float64") for b in ("torch", "tf")]
    for la, lb in train(gans, 3):
        for key in la:
            assert la[key] == pytest.approx(lb[key], rel=FP64_STEP_RTOL), key
    a, b = (every_tensor(gan.export_state()) for gan in gans)
    assert a.keys() == b.keys() and any(k.startswith("G_ema.") for k in a) and "G.attn.gamma" in a
    worst = max((rel_norm(a[k], b[k]), k) for k in a)
    assert worst[0] < FP64_STEP_RTOL, worst
    assert np.abs(a["G.attn.gamma"]).max() > 0 and np.abs(a["D.attn.gamma"]).max() > 0  # attention trained
    assert rel_norm(state["nets"]["G"]["shared.weight"], a["G.shared.weight"]) > 1e-6  # so did the embedding


@pytest.mark.parametrize("training", [False, True])
def test_forwards_float32(setup, training):
    spec, state = setup
    gans = [get_backend(b).GAN(spec, state, HP, device="cpu") for b in ("torch", "tf")]
    z, labels = normal_noise(0, 4, (BATCH, 80)), np.arange(BATCH) % 10
    fakes = [gan.generate(z, training, labels) for gan in gans]
    assert np.abs(fakes[0] - fakes[1]).max() < FP32_FORWARD_ATOL and np.std(fakes[0]) > 1e-3
    images = np.random.default_rng(5).uniform(-1, 1, (BATCH, 32, 32, 3)).astype(np.float32)
    logits = [gan.discriminate(images, training, labels) for gan in gans]
    assert np.abs(logits[0] - logits[1]).max() < FP32_FORWARD_ATOL and np.std(logits[0]) > 1e-4


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_compiled_mode_computes_the_same_steps(setup, backend):
    if backend == "torch":
        import torch._dynamo

        torch._dynamo.reset()
    spec, state = setup
    module = get_backend(backend)
    gans = [module.GAN(spec, state, HP, device="cpu", dtype="float64"),
            module.GAN(spec, state, HP, device="cpu", dtype="float64", mode="compiled")]
    train(gans, 2)
    a, b = (every_tensor(gan.export_state()) for gan in gans)
    worst = max((rel_norm(a[k], b[k]), k) for k in a)
    assert worst[0] < FP64_STEP_RTOL, worst


def one_layer_network(layers, input_shape, prelude=None) -> S.Network:
    return S.Network("N", input_shape, tuple(layers), prelude)


def run_network(backend: str, net: S.Network, arrays: dict, x: np.ndarray, labels=None) -> np.ndarray:
    """A spec network's float64 eval-mode forward in one backend, NCHW in and out."""
    if backend == "torch":
        import torch

        from ganbench.backends.torch.nets import build_network, load_canonical

        module = build_network(net).double().eval()
        load_canonical(module, net, arrays)
        context = None if labels is None else {"labels": torch.from_numpy(labels)}
        with torch.no_grad():
            return module(torch.from_numpy(x), context).numpy()
    import tensorflow as tf

    from ganbench.backends.tf.nets import Network

    module = Network(net, tf.float64)
    module.load_canonical(arrays)
    nhwc = np.moveaxis(x, 1, -1) if x.ndim == 4 else x
    context = None if labels is None else {"labels": tf.constant(labels)}
    out = module(tf.constant(nhwc), False, context).numpy()
    return np.moveaxis(out, -1, 1) if out.ndim == 4 else out


def random_arrays(net: S.Network, rng) -> dict:
    return {name: rng.standard_normal(shape) * 0.3 for name, shape in net.param_shapes().items()}


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def max_pool(x):  # NCHW, 2x2
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_self_attention_matches_numpy(backend):
    """SAGAN: out = x + gamma * o(g softmax(theta^T phi)^T), phi and g max-pooled."""
    layer = S.SelfAttention("attn", 16)
    net = one_layer_network([layer], (16, 8, 8))
    rng = np.random.default_rng(0)
    arrays = random_arrays(net, rng)
    x = rng.standard_normal((3, 16, 8, 8))
    conv = lambda name, t: np.einsum("oi,nihw->nohw", arrays[f"attn_{name}.weight"][:, :, 0, 0], t)  # noqa: E731
    theta = conv("theta", x).reshape(3, 2, 64)
    phi = max_pool(conv("phi", x)).reshape(3, 2, 16)
    g = max_pool(conv("g", x)).reshape(3, 8, 16)
    attention = softmax(np.einsum("ncp,ncq->npq", theta, phi))                 # [n, 64, 16]
    o = conv("o", np.einsum("ncq,npq->ncp", g, attention).reshape(3, 8, 8, 8))
    expected = x + arrays["attn.gamma"][0] * o
    np.testing.assert_allclose(run_network(backend, net, arrays, x), expected, rtol=ORACLE_RTOL, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_projection_head_matches_numpy(backend):
    """logit = w . h + b + <E[y], h>, h the summed features (Miyato & Koyama 2018)."""
    net = one_layer_network([S.GlobalPool("sum"), S.Residual("head", (S.Dense("fc", 6, 1),),
                                                              (S.Projection("embed", 10, 6),))], (6, 4, 4))
    rng = np.random.default_rng(1)
    arrays = random_arrays(net, rng)
    x, labels = rng.standard_normal((5, 6, 4, 4)), np.array([0, 3, 9, 3, 7])
    h = x.sum(axis=(2, 3))
    expected = h @ arrays["fc.weight"].T + arrays["fc.bias"] + (arrays["embed.weight"][labels] * h).sum(1, keepdims=True)
    np.testing.assert_allclose(run_network(backend, net, arrays, x, labels), expected, rtol=ORACLE_RTOL)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_conditional_batchnorm_and_hierarchical_z_match_numpy(backend):
    """cond1 = [E[y], z chunk 1]; out = BN(x) * (1 + W_gain cond1) + W_bias cond1 (eval mode: the
    running statistics), with x = z chunk 0 reshaped."""
    prelude = S.HierarchicalZ(2, S.Embedding("shared", 10, 3))
    cbn = S.CondBatchNorm("cbn", 2, "cond1", 3 + 4, eps=1e-4)
    net = one_layer_network([S.Reshape((2, 1, 2)), cbn], (8,), prelude)
    rng = np.random.default_rng(2)
    arrays = {**random_arrays(net, rng), "cbn.running_mean": rng.standard_normal(2),
              "cbn.running_var": rng.uniform(0.5, 2.0, 2)}
    z, labels = rng.standard_normal((4, 8)), np.array([1, 2, 2, 9])
    x, cond = z[:, :4].reshape(4, 2, 1, 2), np.concatenate([arrays["shared.weight"][labels], z[:, 4:]], axis=1)
    mean, var = arrays["cbn.running_mean"][:, None, None], arrays["cbn.running_var"][:, None, None]
    gain, bias = cond @ arrays["cbn_gain.weight"].T, cond @ arrays["cbn_bias.weight"].T
    expected = (x - mean) / np.sqrt(var + 1e-4) * (1 + gain[:, :, None, None]) + bias[:, :, None, None]
    np.testing.assert_allclose(run_network(backend, net, arrays, z, labels), expected, rtol=ORACLE_RTOL)


def test_hflip_and_labels_reach_the_step():
    from ganbench import data
    from ganbench.training.inputs import draw_step_inputs

    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40) % 10
    stream = data.BatchStream(images, 8, 0, labels)
    spec = build_spec("biggan", 3, 32, WIDTH)
    config = TrainConfig(model="biggan", dataset="cifar10", batch_size=8, n_dis=2, hflip=True)
    step = draw_step_inputs(config, stream, spec, 3)
    plain = draw_step_inputs(config.replace(hflip=False), stream, spec, 3)
    assert np.array_equal(step.labels, np.stack([stream.batch_labels(6), stream.batch_labels(7)]))
    assert step.fake_labels.shape == (2, 8) and 0 <= step.fake_labels.min() and step.fake_labels.max() <= 9
    flipped = [(d, i) for d in range(2) for i in range(8) if not np.array_equal(step.reals[d, i], plain.reals[d, i])]
    assert 0 < len(flipped) < 16
    for d, i in flipped:
        assert np.array_equal(step.reals[d, i], plain.reals[d, i][:, ::-1])


def test_unlabeled_data_is_refused_before_anything_is_written(tmp_path, capsys):
    from ganbench.cli import main

    for dataset, extra in (("stl10", []), ("folder", ["--image-dir", str(tmp_path)])):
        assert main(["train", "--model", "biggan", "--dataset", dataset, *extra, "--out", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == (f"ganbench: error: biggan is class-conditional and needs labels: dataset "
                                           f"{dataset!r} has none (choose from mnist, fashion-mnist, cifar10)\n")
        assert not (tmp_path / "run").exists()


def test_class_metrics_oracle():
    from ganbench.metrics import stats
    from ganbench.metrics.evaluate import class_metrics

    rng = np.random.default_rng(3)
    ref = {"features": rng.standard_normal((60, 4)), "labels": np.repeat([0, 1, 2], 20)}
    features, labels = rng.standard_normal((30, 4)) + 0.5, np.repeat([0, 1, 2], 10)
    probs = np.eye(3)[labels]
    probs[[0, 10]] = probs[[10, 0]]  # one sample of class 0 and one of class 1 misread; class 2 all right
    out, per_class = class_metrics(ref, features, probs, labels)
    assert out["class_accuracy"] == pytest.approx(28 / 30)
    assert per_class["class"] == [0, 1, 2] and per_class["class_accuracy"] == pytest.approx([0.9, 0.9, 1.0])
    fds = [stats.frechet_distance(*stats.mean_cov(ref["features"][ref["labels"] == k]),
                                  *stats.mean_cov(features[labels == k])) for k in range(3)]
    assert per_class["intra_fid"] == pytest.approx(fds, rel=1e-12)
    assert out["intra_fid"] == pytest.approx(np.mean(fds), rel=1e-12)


@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory, setup):
    """A float32 checkpoint of 2 torch steps (EMA on) of the reduced BigGAN."""
    from ganbench import checkpoint

    spec, state = setup
    gan = get_backend("torch").GAN(spec, state, HP, device="cpu")
    train([gan], 2)
    out = tmp_path_factory.mktemp("biggan") / "run"
    config = HP.replace(dataset="cifar10", width=WIDTH, image_size=32, channels=3, steps=2)
    checkpoint.save(out, 2, gan.export_state(), config, spec, {"backend": "torch"})
    return out


@pytest.mark.parametrize("options", [["--class", "3"], ["--class", "7", "--truncation", "0.5"], ["--classes"],
                                     ["--classes", "--standing-stats", "2"]])
def test_a_checkpoint_samples_the_same_png_in_both_backends(biggan_run, tmp_path, options):
    from PIL import Image

    from ganbench.cli import main

    pngs = []
    for backend in ("torch", "tf"):
        out = tmp_path / f"{backend}.png"
        assert main(["sample", "--checkpoint", str(biggan_run), "--backend", backend, "--n", "10", *options,
                     "--out", str(out)]) == 0
        pngs.append(np.asarray(Image.open(out), np.int16))
    assert pngs[0].std() > 5
    assert np.abs(pngs[0] - pngs[1]).max() <= 1  # one float32 forward: at most a uint8 rounding step
    if "--classes" in options:
        assert pngs[0].shape[:2] == (2 + 10 * 34, 2 + 10 * 34)  # 10 rows (classes) of 10


def test_standing_statistics_average_the_batches(setup):
    """--standing-stats: G_ema's BatchNorm running statistics become the plain average of each
    batch's statistics (so the statistics after batches a and b are the mean of those after a
    alone and after b alone), the same in both backends (float64), and G's own stay as they were."""
    from ganbench.sampling import standing_batches

    spec, state = setup
    a, b = standing_batches(spec, 2, BATCH, seed=5)
    stats = {}
    for backend in ("torch", "tf"):
        for name, batches in (("a", [a]), ("b", [b]), ("ab", [a, b])):
            gan = get_backend(backend).GAN(spec, state, HP, device="cpu", dtype="float64")
            gan.standing_stats(batches)
            nets = gan.export_state()["nets"]
            stats[backend, name] = {n: v for n, v in nets["G_ema"].items() if ".running_" in n}
            assert all(np.array_equal(nets["G"][n], state["nets"]["G"][n]) for n in stats[backend, name])
    names = stats["torch", "ab"].keys()
    assert len(names) == 2 * 7  # mean and variance of two conditional BNs in each of three up-blocks, and the last BN
    for n in names:
        mean_of_two = (stats["torch", "a"][n] + stats["torch", "b"][n]) / 2
        assert rel_norm(mean_of_two, stats["torch", "ab"][n]) < ORACLE_RTOL, n
        assert rel_norm(stats["torch", "ab"][n], stats["tf", "ab"][n]) < FP64_STEP_RTOL, n
        assert rel_norm(stats["torch", "a"][n], stats["torch", "b"][n]) > 1e-6, n  # the batches differ


def test_truncation_redraws_into_the_interval():
    from ganbench.sampling import sample_noise

    spec = build_spec("biggan", 3, 32, WIDTH)
    z = sample_noise(spec, 200, seed=4, index=0, truncation=0.5)
    assert np.abs(z).max() <= 0.5 and z.std() > 0.2
    assert np.array_equal(z, sample_noise(spec, 200, seed=4, index=0, truncation=0.5))  # keyed
    plain = sample_noise(spec, 200, seed=4, index=0)
    inside = np.abs(plain) <= 0.5
    assert np.array_equal(z[inside], plain[inside])  # only the elements outside were redrawn


def test_slerp_keeps_the_ends_and_the_norm_of_unit_vectors():
    from ganbench.sampling import slerp

    rng = np.random.default_rng(6)
    a, b = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 80)))
    path = slerp(a, b, np.linspace(0, 1, 7))
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-6)


def test_interpolation_writes_a_strip_and_a_gif(biggan_run, tmp_path):
    from PIL import Image

    from ganbench.cli import main

    assert main(["sample", "--checkpoint", str(biggan_run), "--interpolate", "--n", "5",
                 "--out", str(tmp_path / "strip.png")]) == 0
    assert Image.open(tmp_path / "strip.png").size == (2 + 5 * 34, 2 + 34)  # one row of 5 frames
    assert main(["sample", "--checkpoint", str(biggan_run), "--interpolate", "--out", str(tmp_path / "i.gif")]) == 0
    gif = Image.open(tmp_path / "i.gif")
    assert gif.format == "GIF" and gif.n_frames == 10


def test_class_options_are_refused_for_unconditional_models(tmp_path, capsys):
    from ganbench import checkpoint
    from ganbench.cli import main

    spec = build_spec("dcgan", 1)
    state = get_backend("torch").GAN(spec, {"nets": init_gan(spec, 0)}, TrainConfig(), device="cpu").export_state()
    checkpoint.save(tmp_path / "run", 1, state, TrainConfig(), spec, {"backend": "torch"})
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--class", "1"]) == 2
    assert capsys.readouterr().err == "ganbench: error: dcgan is not class-conditional: it takes no class\n"
    assert not (tmp_path / "run" / "sample.png").exists()


def test_dataclass_edits_keep_the_spec_hash():
    """A BigGAN spec and the same with an extra no-op note hash alike (checkpoint compatibility)."""
    from ganbench import checkpoint

    spec = build_spec("biggan", 3, 32, WIDTH)
    assert checkpoint.spec_hash(spec) == checkpoint.spec_hash(dataclasses.replace(spec, notes=("x",)))


def test_orthogonal_regularisation_matches_numpy_and_both_backends(setup):
    """1/2 sum ||W W^T * (1 - I)||^2 over G's matrices (the shared embedding exempt), and 2 float64
    steps with it on agree across backends."""
    spec, state = setup
    hp = HP.replace(ortho_reg=1e-4)
    expected = 0.0
    for name, value in state["nets"]["G"].items():
        if value.ndim >= 2 and not name.startswith("shared."):
            m = value.astype(np.float64).reshape(value.shape[0], -1)
            gram = m @ m.T
            expected += 0.5 * ((gram * (1 - np.eye(len(gram)))) ** 2).sum()
    gans = [get_backend(b).GAN(spec, state, hp, device="cpu", dtype="float64") for b in ("torch", "tf")]
    for gan in gans:
        value = gan.ortho_penalty()
        assert float(value.detach() if hasattr(value, "detach") else value) == pytest.approx(expected, rel=ORACLE_RTOL)
    losses = train(gans, 2)
    assert losses[0][0]["ortho"] == pytest.approx(expected, rel=ORACLE_RTOL)  # before the first G update
    a, b = (every_tensor(gan.export_state()) for gan in gans)
    worst = max((rel_norm(a[k], b[k]), k) for k in a)
    assert worst[0] < FP64_STEP_RTOL, worst
