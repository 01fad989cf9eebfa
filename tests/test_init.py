"""Numpy initialisation: DCGAN's distributions, keyed per tensor, stable across releases."""

import numpy as np
import pytest

from ganbench.archs import build_spec
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.images import make_grid, to_uint8
from ganbench.init import init_gan


def test_golden_values(init_state):
    g, d = init_state["nets"]["G"], init_state["nets"]["D"]
    # Golden values of seed 0: a change here silently changes every saved run's starting point.
    np.testing.assert_allclose(g["fc.weight"][0, :3], [0.0023412450682, 0.0125416470692, -0.0159615948796], rtol=1e-6)
    np.testing.assert_allclose(d["conv1.weight"][0, 0, 0, :3], [0.0385310240090, -0.0170300714671, 0.0038770888932], rtol=1e-6)
    np.testing.assert_allclose(g["bn1.weight"][:3], [1.0222269296646, 0.9930881857872, 0.9831369519234], rtol=1e-6)


def test_distributions(init_state):
    g, d = init_state["nets"]["G"], init_state["nets"]["D"]
    assert g["deconv1.weight"].dtype == np.float32
    assert abs(g["deconv1.weight"].std() - 0.02) < 2e-4 and abs(g["deconv1.weight"].mean()) < 2e-4
    assert abs(g["bn0.weight"].mean() - 1.0) < 4e-3 and abs(g["bn0.weight"].std() - 0.02) < 3e-3
    assert not g["bn0.bias"].any() and not d["fc.bias"].any() and not g["deconv3.bias"].any()
    assert not g["bn0.running_mean"].any() and (g["bn0.running_var"] == 1).all()


def test_seeds_and_tensors_are_independent(spec):
    a, b = init_gan(spec, 0), init_gan(spec, 1)
    assert not np.array_equal(a["G"]["fc.weight"], b["G"]["fc.weight"])
    # G and D both have a "bn2": the network name is part of the key
    assert not np.array_equal(a["G"]["bn2.weight"], a["D"]["bn2.weight"])


def test_spec_shapes_match_the_issue(spec):
    assert spec.image_shape == (1, 32, 32) and spec.z_dim == 100
    assert build_spec("dcgan", 3).discriminator.param_shapes()["conv1.weight"] == (64, 3, 4, 4)
    assert spec.discriminator.param_shapes()["fc.weight"] == (1, 128 * 8 * 8)  # the seed had 128*16*16
    with pytest.raises(GanbenchError, match="unknown model"):
        build_spec("dcgan2", 1)


def test_quantisation_rounds_and_clips():
    values = np.array([-1.5, -1.0, -0.9961, 0.0, 0.99, 1.0, 2.0]).reshape(1, 7, 1, 1)
    assert to_uint8(values).ravel().tolist() == [0, 0, 0, 128, 254, 255, 255]
    grid = make_grid(np.full((5, 2, 2, 1), 200, np.uint8), ncols=3, pad=1)
    assert grid.shape == (7, 10, 1) and grid.sum() == 5 * 4 * 200


def test_config_validation():
    assert TrainConfig().validate().steps == 1000
    with pytest.raises(GanbenchError, match="n-dis must be positive, got 0"):
        TrainConfig(n_dis=0).validate()
    with pytest.raises(GanbenchError, match=r"beta1 must be in \[0, 1\), got 1.0"):
        TrainConfig(beta1=1.0).validate()
    with pytest.raises(GanbenchError, match="seed must be 0 or positive, got -2"):
        TrainConfig(seed=-2).validate()
    with pytest.raises(GanbenchError, match="unknown config key"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(GanbenchError, match="config key 'steps' must be int"):
        TrainConfig.from_dict({"steps": "3"})
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_non_finite_loss_names_step_and_network():
    from ganbench.errors import TrainingDiverged
    from ganbench.training.loop import check_finite

    check_finite({"d_loss": 1.0, "g_loss": 2.0}, 3)
    with pytest.raises(TrainingDiverged, match=r"non-finite g_loss \(nan\) in network G at step 7"):
        check_finite({"d_loss": 1.0, "g_loss": float("nan")}, 7)
