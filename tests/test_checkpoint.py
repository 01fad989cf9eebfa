import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.sampling import sample_grid
from ganbench.training.loop import spec_from_metadata

CONFIG = TrainConfig(steps=3)
WRITER = {"backend": "test"}


def trained_state(backend, spec, init_state, real_batches, steps=3):
    from ganbench.rng import normal_noise

    gan = get_backend(backend).GAN(spec, init_state, CONFIG, device="cpu")
    for s in range(steps):
        gan.train_step(real_batches[s], normal_noise(0, 7, (1, 64, 100), s))
    return gan.export_state()


@pytest.fixture(scope="module")
def torch_state(spec, init_state, real_batches):
    return trained_state("torch", spec, init_state, real_batches)


def test_roundtrip_is_exact_and_latest_moves(tmp_path, spec, torch_state):
    for step in (1, 2, 3, 4):
        path = checkpoint.save(tmp_path, step, torch_state, CONFIG, spec, WRITER, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.safetensors")) == [
        "step_0000003.safetensors", "step_0000004.safetensors"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == path.name
    state, meta, resolved = checkpoint.load(tmp_path, spec_from_metadata)
    assert resolved == path and meta["step"] == 4 and meta["config"]["steps"] == 3
    assert meta["opt_steps"] == {"G": 3, "D": 3}
    for key in ("G", "D"):
        for name, value in torch_state["nets"][key].items():
            assert np.array_equal(state["nets"][key][name], value), name
        for name, value in torch_state["opt"][key]["exp_avg_sq"].items():
            assert np.array_equal(state["opt"][key]["exp_avg_sq"][name], value), name
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    from ganbench.fileio import default_file_mode

    assert path.stat().st_mode & 0o777 == default_file_mode()  # not mkstemp's private 0o600


@pytest.mark.parametrize("writer, reader", [("torch", "tf"), ("tf", "torch")])
def test_cross_backend_sampling_gives_the_same_png(tmp_path, spec, init_state, real_batches, writer, reader):
    state = trained_state(writer, spec, init_state, real_batches)
    checkpoint.save(tmp_path / "run", 3, state, CONFIG, spec, {"backend": writer})
    pngs = {}
    for backend in (writer, reader):
        out = sample_grid(tmp_path / "run", backend, 16, seed=1, out=tmp_path / f"{backend}.png")
        pngs[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert pngs[writer].shape == (138, 138)  # 4 x 4 tiles of 32 px with 2 px borders, grayscale
    assert pngs[writer].std() > 10  # a real picture, not a blank
    # one float32 forward from the same weights (~1e-5 apart): at most a rounding step of uint8
    assert np.abs(pngs[writer] - pngs[reader]).max() <= 1


def test_checkpoint_resumes_optimizer_in_other_backend(spec, torch_state, tmp_path):
    checkpoint.save(tmp_path, 3, torch_state, CONFIG, spec, WRITER)
    state, _, _ = checkpoint.load(tmp_path, spec_from_metadata)
    tf_gan = get_backend("tf").GAN(spec, state, CONFIG)
    exported = tf_gan.export_state()
    assert exported["opt"]["G"]["step"] == 3
    for name, value in state["opt"]["D"]["exp_avg"].items():
        assert np.array_equal(exported["opt"]["D"]["exp_avg"][name], value)


def test_garbage_file_is_unreadable(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(GanbenchError, match=r"bad.safetensors: unreadable checkpoint"):
        checkpoint.load(bad, spec_from_metadata)


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(GanbenchError, match=r"not a ganbench checkpoint"):
        checkpoint.load(path, spec_from_metadata)


def test_wrong_shapes_are_incompatible(tmp_path, spec, torch_state):
    path = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    tensors = checkpoint.flatten_state(torch_state)
    tensors["G.fc.weight"] = tensors["G.fc.weight"][:10]
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(GanbenchError, match=r"incompatible checkpoint: G.fc.weight has shape \(10, 100\), model needs \(8192, 100\)"):
        checkpoint.load(path, spec_from_metadata)


def test_other_format_version_is_incompatible(tmp_path, spec, torch_state):
    path = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["ganbench"])
    meta["version"] = 99
    save_file(checkpoint.flatten_state(torch_state), str(path), metadata={"ganbench": json.dumps(meta)})
    with pytest.raises(GanbenchError, match=r"incompatible checkpoint format 'ganbench-checkpoint' v99"):
        checkpoint.load(path, spec_from_metadata)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(GanbenchError, match=r"no checkpoint found"):
        checkpoint.load(tmp_path, spec_from_metadata)
