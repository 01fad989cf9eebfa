"""The relativistic pairing loss (--loss rpgan): each fake scored against the real it is paired
with, in D's loss and in G's (which calls D on the last D update's reals, with that call's
record); float64 training steps equal across backends, with and without G's own batch, with R1
and R2 beside it as R3GAN trains, and through DiffAugment at every D call.

Tolerances: FP64_STEP_RTOL (test_parity_models) for weights after the steps."""

import dataclasses

import pytest

from ganbench import augment
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.rng import STREAM_AUGMENT
from test_parity_models import BATCH, FP64_STEP_RTOL, N_DIS, setup, step_inputs, worst


def train(backend, own_batch: bool, diffaugment: str = ""):
    spec, state, config = setup("sngan_cnn", 32, "rpgan", 0.125)
    config = config.replace(r1=1.0, r2=1.0, diffaugment=diffaugment)
    gan = get_backend(backend).GAN(spec, state, config, dtype="float64", mode="eager")
    layout = augment.Layout(augment.parse_policy(diffaugment), *spec.image_shape[:2])
    for s in range(2):
        inputs = step_inputs(spec, "rpgan", s)
        inputs = dataclasses.replace(inputs, z_g=inputs.z_g[:BATCH] if own_batch else None)
        if diffaugment:
            d_args, g_args = augment.step_args(layout, 0, STREAM_AUGMENT, s, N_DIS, BATCH, BATCH)
            inputs = dataclasses.replace(inputs, transform_args=d_args, g_transform_args=g_args)
        out = gan.train_step(inputs)
        assert {"d_loss", "g_loss", "r1", "r2"} <= set(out)
    return gan.export_state()


@pytest.mark.parametrize("own_batch,diffaugment", [(False, ""), (True, ""), (False, "color,translation,cutout")])
def test_rpgan_trains_identically_in_both_backends(own_batch, diffaugment):
    torch_state, tf_state = (train(b, own_batch, diffaugment) for b in ("torch", "tf"))
    gap, where = worst(torch_state, tf_state)
    assert gap <= FP64_STEP_RTOL, f"{where} differs by {gap:.2e}"


def test_rpgan_needs_a_g_batch_it_can_pair():
    with pytest.raises(GanbenchError, match="rpgan pairs each fake with a real"):
        TrainConfig(loss="rpgan", batch_size=64, batch_size_g=128).validate()
    TrainConfig(loss="rpgan", batch_size=64, batch_size_g=64).validate()
