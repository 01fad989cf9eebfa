"""The presets that reproduce pytorch/examples dcgan and TensorFlow's DCGAN tutorial.

Tolerances:
- FP64_STEP_ATOL: float64, every weight and buffer after 3 training steps, torch vs tf (measured
  ~5e-13).
- KERAS_ATOL: float32, the tutorial's model written with Keras layers (its defaults: 'same'
  padding, BN eps 1e-3, LeakyReLU 0.3) vs ganbench's tf network on the same weights: one forward
  from identical weights, whose rounding no training amplifies.
- Float32 elementwise checks (dropout's scale, Adam against Keras' Adam on the same given
  gradients) carry a few roundings of each element, so 1e-6 bounds them on any CPU.
"""

import numpy as np
import pytest

from ganbench.archs import build_spec
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.init import init_gan
from ganbench.presets import apply_preset
from ganbench.rng import dropout_keep_nchw, dropout_step_key, mix32, normal_noise
from ganbench.step_inputs import StepInputs

FP64_STEP_ATOL = 1e-10
KERAS_ATOL = 1e-5
PRESETS = {"dcgan-pytorch-example": 64, "dcgan-tf-tutorial": 28}
BATCH = 8


def setup(preset, **changes):
    config = apply_preset(TrainConfig(), preset).replace(**changes)
    spec = build_spec(config.model, 1, PRESETS[preset])
    return config, spec, {"nets": init_gan(spec, 0)}


def inputs(spec, step):
    size = spec.image_shape[1]
    return StepInputs(reals=np.random.default_rng(step).uniform(-1, 1, (1, BATCH, size, size, 1)).astype(np.float32),
                      z=normal_noise(0, 2, (1, BATCH, spec.z_dim), step),
                      dropout_key=dropout_step_key(0, step) if spec.has_dropout else None)


def max_diff(a: dict, b: dict) -> tuple:
    return max((np.abs(a["nets"][k][n] - b["nets"][k][n]).max(), f"{k}.{n}") for k in a["nets"] for n in a["nets"][k])


def test_presets_state_the_examples_hyperparameters():
    torch_ex = apply_preset(TrainConfig(), "dcgan-pytorch-example").validate()
    assert (torch_ex.batch_size, torch_ex.lr_g, torch_ex.beta1, torch_ex.beta2, torch_ex.update) == (
        64, 2e-4, 0.5, 0.999, "alternating")
    tutorial = apply_preset(TrainConfig(), "dcgan_tf_tutorial").validate()
    assert (tutorial.batch_size, tutorial.lr_g, tutorial.lr_d, tutorial.beta1, tutorial.eps, tutorial.eps_form,
            tutorial.update) == (256, 1e-4, 1e-4, 0.9, 1e-7, "keras", "simultaneous")
    g, d = build_spec("dcgan_pytorch_example", 3).networks.values()
    assert g.param_shapes()["deconv0.weight"] == (100, 512, 4, 4) and not any(n.endswith("bias") and "bn" not in n
                                                                              for n in {**g.param_shapes(), **d.param_shapes()})
    assert build_spec("dcgan_tf_tutorial", 1).discriminator.param_shapes()["fc.weight"] == (1, 7 * 7 * 128)


@pytest.mark.parametrize("preset", PRESETS)
def test_three_float64_steps_agree_across_backends(preset):
    config, spec, state = setup(preset)
    gans = [get_backend(b).GAN(spec, state, config, device="cpu", dtype="float64") for b in ("torch", "tf")]
    for step in range(3):
        losses = [gan.train_step(inputs(spec, step)) for gan in gans]
        assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    worst, name = max_diff(*(gan.export_state() for gan in gans))
    assert worst < FP64_STEP_ATOL, name


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_simultaneous_update_scores_fakes_with_the_unchanged_discriminator(backend):
    """One simultaneous step = D's update of an alternating step + G's update of an alternating
    step whose D did not move (lr_d 0), from the same init and inputs (the example without
    dropout, so that every D call on the fakes draws the same BN statistics)."""
    make = lambda **c: get_backend(backend).GAN(spec, state, config.replace(**c), device="cpu", dtype="float64")  # noqa: E731
    config, spec, state = setup("dcgan-pytorch-example", batch_size=BATCH)
    simultaneous, alternating, frozen_d = make(update="simultaneous"), make(), make(lr_d=0.0)
    for gan in (simultaneous, alternating, frozen_d):
        gan.train_step(inputs(spec, 0))
    sim, alt, frozen = (gan.export_state()["nets"] for gan in (simultaneous, alternating, frozen_d))
    for name in spec.discriminator.param_shapes():  # running stats: alternating runs D once more
        np.testing.assert_allclose(sim["D"][name], alt["D"][name], rtol=0, atol=1e-12, err_msg=name)
    for name in sim["G"]:
        np.testing.assert_allclose(sim["G"][name], frozen["G"][name], rtol=0, atol=1e-12, err_msg=name)
    assert not np.allclose(sim["G"]["deconv1.weight"], alt["G"]["deconv1.weight"], rtol=0, atol=1e-9)


def test_gradient_penalty_calls_D_with_the_steps_dropout_keys():
    """WGAN-GP on a D with dropout: the penalty's D call is keyed like the step's other calls (rank
    2, after real and fake), so it runs, and both backends drop the same units (float64)."""
    import dataclasses

    config, spec, state = setup("dcgan-tf-tutorial", loss="wgan-gp", update="alternating")
    step = dataclasses.replace(inputs(spec, 0), alphas=np.random.default_rng(3).uniform(0, 1, (1, BATCH)))
    gans = [get_backend(b).GAN(spec, state, config, device="cpu", dtype="float64") for b in ("torch", "tf")]
    losses = [gan.train_step(step) for gan in gans]
    assert losses[0]["gp"] > 0 and losses[0]["gp"] == pytest.approx(losses[1]["gp"], rel=1e-12)
    worst, name = max_diff(*(gan.export_state() for gan in gans))
    assert worst < FP64_STEP_ATOL, name


def test_mix32_matches_a_python_int_reference():
    def reference(x):
        x = ((x ^ (x >> 16)) * 0x7FEB352D) % 2**32
        x = ((x ^ (x >> 15)) * 0x2C1B3C6D) % 2**32
        return x ^ (x >> 16)

    values = [0, 1, 12345, 2**31 - 1, 2**31, 2**32 - 1]
    assert [mix32(v) for v in values] == [reference(v) for v in values]
    assert np.array_equal(mix32(np.array(values, np.int64)), [reference(v) for v in values])


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_dropout_masks_match_the_numpy_oracle(backend):
    from ganbench.archs.spec import Dropout

    layer, shape, key, call = Dropout("drop1", 0.3), (4, 8, 5, 6), 987654321, 2
    keep = dropout_keep_nchw(key, call, layer.name, shape, layer.rate)
    assert abs(keep.mean() - 0.7) < 0.02
    ones = np.ones(shape, np.float32)
    if backend == "torch":
        import torch

        from ganbench.backends.torch.nets import KeyedDropout

        call_key = mix32(torch.tensor(key) ^ call)
        out = KeyedDropout(layer).train()(torch.from_numpy(ones), {"call_key": call_key}).numpy()
    else:
        import tensorflow as tf

        from ganbench.backends.tf.dropout import Dropout as TfDropout, shift

        call_key = mix32(tf.constant(key, tf.int64) ^ call, shift)
        out = TfDropout(layer)(tf.constant(ones.transpose(0, 2, 3, 1)), True, {"call_key": call_key})
        out = out.numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, keep / 0.7, rtol=1e-6)


def test_tf_dropout_mask_of_a_replica_in_both_index_widths():
    """TensorFlow hashes in uint32 where the global batch's indices fit in 31 bits, else in int64:
    both give the oracle's mask, and a replica (shard 1 of 2) gets the global batch's rows 4..7."""
    import tensorflow as tf

    from ganbench.archs.spec import Dropout
    from ganbench.backends.tf.dropout import Dropout as TfDropout, keep_scale_32, shift

    layer, key, call = Dropout("drop2", 0.3), 123456789, 1
    keep = dropout_keep_nchw(key, call, layer.name, (8, 8, 5, 6), layer.rate)[4:].transpose(0, 2, 3, 1)
    dropout = TfDropout(layer)
    call_key = mix32(mix32(tf.constant(key, tf.int64) ^ call, shift) ^ dropout.layer_key, shift)
    narrow = keep_scale_32(call_key, (4, 5, 6, 8), 1, dropout.threshold, 1.0, tf.float32)  # XLA
    wide = dropout._keep_mask_int64(call_key, tf.constant(4, tf.int64), (5, 6, 8), shard=1)
    assert narrow.dtype == tf.float32 and np.array_equal(narrow.numpy(), keep.astype(np.float32))
    assert np.array_equal(wide.numpy(), keep)


def test_torch_dropout_mask_of_a_replica_in_both_index_widths():
    """PyTorch hashes in int32 (uint32 bits) where the global batch's indices fit in 31 bits, else
    in int64: both give the oracle's mask, and a replica (shard 1 of 2) gets rows 4..7."""
    import torch

    from ganbench.archs.spec import Dropout
    from ganbench.backends.torch.nets import KeyedDropout

    layer, key, call = Dropout("drop2", 0.3), 123456789, 1
    keep = dropout_keep_nchw(key, call, layer.name, (8, 8, 5, 6), layer.rate)[4:]
    dropout = KeyedDropout(layer)
    call_key = mix32(mix32(torch.tensor(key) ^ call) ^ dropout.layer_key)
    narrow = dropout.keep_mask(call_key, (4, 8, 5, 6), shard=1)
    assert narrow.dtype == torch.bool and np.array_equal(narrow.numpy(), keep)
    numel = 4 * 8 * 5 * 6
    # the int64 form: the same rows as indices of a global batch too large for 31 bits
    wide = dropout.keep_mask(call_key, (4, 8, 5, 6), shard=2**31 // numel)
    index = np.arange(numel, dtype=np.int64).reshape(4, 8, 5, 6) + (2**31 // numel) * numel
    oracle = mix32(index ^ mix32(mix32(key ^ call) ^ dropout.layer_key)) >= dropout.threshold
    assert np.array_equal(wide.numpy(), oracle)


def test_tutorial_network_equals_keras_layers_with_keras_defaults():
    """The tutorial's model written with Keras layers and their defaults, loaded with ganbench's
    init (Dense units permuted from the spec's CHW order to Keras' HWC), agrees with ganbench's tf
    networks: G in training mode (batch statistics), D in inference mode (no dropout)."""
    from ganbench.backends.tf.nets import Network
    import keras

    spec = build_spec("dcgan_tf_tutorial", 1)
    state = init_gan(spec, 0)
    chw_to_hwc = lambda c, h, w: np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)  # noqa: E731
    hwc = chw_to_hwc(256, 7, 7)
    g = state["G"]
    generator = keras.Sequential([
        keras.Input((100,)),
        keras.layers.Dense(7 * 7 * 256, use_bias=False), keras.layers.BatchNormalization(), keras.layers.LeakyReLU(),
        keras.layers.Reshape((7, 7, 256)),
        keras.layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
    ])
    bn = lambda name, perm=slice(None): [g[f"{name}.weight"][perm], g[f"{name}.bias"][perm],  # noqa: E731
                                         g[f"{name}.running_mean"][perm], g[f"{name}.running_var"][perm]]
    convt = lambda name: g[f"{name}.weight"].transpose(2, 3, 1, 0)  # (in, out, kh, kw) -> (kh, kw, out, in)  # noqa: E731
    generator.set_weights([g["fc.weight"].T[:, hwc], *bn("bn0", hwc), convt("deconv1"), *bn("bn1"),
                           convt("deconv2"), *bn("bn2"), convt("deconv3")])
    d = state["D"]
    discriminator = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(64, 5, strides=2, padding="same"), keras.layers.LeakyReLU(), keras.layers.Dropout(0.3),
        keras.layers.Conv2D(128, 5, strides=2, padding="same"), keras.layers.LeakyReLU(), keras.layers.Dropout(0.3),
        keras.layers.Flatten(), keras.layers.Dense(1),
    ])
    conv = lambda name: d[f"{name}.weight"].transpose(2, 3, 1, 0)  # noqa: E731
    discriminator.set_weights([conv("conv1"), d["conv1.bias"], conv("conv2"), d["conv2.bias"],
                               d["fc.weight"].T[chw_to_hwc(128, 7, 7)], d["fc.bias"]])
    ours_g, ours_d = Network(spec.generator), Network(spec.discriminator)
    ours_g.load_canonical(g)
    ours_d.load_canonical(d)
    z = normal_noise(0, 2, (16, 100), 0)
    images = np.asarray(generator(z, training=True))
    np.testing.assert_allclose(ours_g(z, True).numpy(), images, atol=KERAS_ATOL)
    np.testing.assert_allclose(ours_d(images, False).numpy(), np.asarray(discriminator(images, training=False)),
                               atol=KERAS_ATOL)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_train_on_mnist_in_both_backends(tmp_path, data_dir, preset, backend):
    import json

    from ganbench.training import loop

    config = apply_preset(TrainConfig(), preset).replace(backend=backend, batch_size=8, steps=2, sample_every=2,
                                                         checkpoint_every=2, log_every=1)
    loop.train(config, tmp_path / "run", data_dir=data_dir, progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["image_size"], saved["channels"]) == (PRESETS[preset], 1)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["g_loss"]) for r in log)


def test_mnist_is_resized_bilinearly_to_64():
    from PIL import Image

    from ganbench.data.catalog import fit_to_size

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    out = fit_to_size(images, 64)
    assert out.shape == (3, 64, 64, 1) and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(images[1, ..., 0]).resize((64, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(out[1, ..., 0], expected)
    assert fit_to_size(images, 32).shape == (3, 32, 32, 1) and (fit_to_size(images, 32)[:, :2] == 0).all()


def test_tf_convolutions_use_tensorflows_own_padding_where_it_is_the_same():
    """'SAME'/'VALID' where TensorFlow pads as the spec does (2-2.5x faster graphs on the CPU),
    the explicit pads otherwise; numerics are covered by the parity tests."""
    from ganbench.archs.spec import Conv, ConvT
    from ganbench.backends.tf.convolutions import padding

    assert padding(Conv("c", 1, 1, 4, 2, 1), 32) == "SAME"                  # dcgan, k4 s2 p1
    assert padding(Conv("c", 1, 1, 5, 2, (1, 2)), 28) == "SAME"             # the tutorial's 'same'
    assert padding(Conv("c", 1, 1, 3, 1, 1), 16) == "SAME"
    assert padding(Conv("c", 1, 1, 4, 1, 0), 4) == "VALID"
    assert padding(Conv("c", 1, 1, 4, 1, 1), 8) == [[0, 0], [1, 1], [1, 1], [0, 0]]  # TF's SAME: (1, 2)
    assert padding(ConvT("t", 1, 1, 4, 2, 1), 64) == "SAME"                 # sized by its output
    assert padding(ConvT("t", 1, 1, 5, 2, (1, 2)), 14) == "SAME"


def test_keras_epsilon_form_is_keras_adam():
    """eps_form 'keras' (the tutorial's preset) updates as keras.optimizers.Adam does; the torch
    backend's form is tied to this one by the float64 parity test above. eps 1e-3 makes the two
    forms far apart."""
    import keras
    import tensorflow as tf

    from ganbench.backends.tf.step import Adam

    rng = np.random.default_rng(0)
    start = rng.standard_normal(6).astype(np.float32)
    grads = [rng.standard_normal(6).astype(np.float32) * 1e-3 for _ in range(3)]
    reference = keras.Variable(start)
    keras_adam = keras.optimizers.Adam(learning_rate=1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-3)
    ours = {form: tf.Variable(start) for form in ("keras", "torch")}
    adams = {form: Adam([var], 1e-2, 0.9, 0.999, 1e-3, tf.float32, form) for form, var in ours.items()}
    for g in grads:
        keras_adam.apply_gradients([(tf.constant(g), reference)])
        for form, var in ours.items():
            adams[form].apply([tf.constant(g)], [var])
    np.testing.assert_allclose(ours["keras"].numpy(), np.asarray(reference), rtol=0, atol=1e-6)
    assert np.abs(ours["torch"].numpy() - np.asarray(reference)).max() > 1e-3
