import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from ganbench import checkpoint
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.images import save_grid
from ganbench.sampling import load_generator
from ganbench.step_inputs import StepInputs

CONFIG = TrainConfig(steps=3)
WRITER = {"backend": "test"}


def trained_state(backend, spec, init_state, real_batches, steps=3):
    from ganbench.rng import normal_noise

    gan = get_backend(backend).GAN(spec, init_state, CONFIG, device="cpu")
    for s in range(steps):
        gan.train_step(StepInputs(real_batches[s], normal_noise(0, 7, (1, 64, 100), s)))
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
    state, meta, resolved, _ = checkpoint.load(tmp_path)
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
        out = save_grid(load_generator(tmp_path / "run", backend).sample(16, seed=1), tmp_path / f"{backend}.png")
        pngs[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert pngs[writer].shape == (138, 138)  # 4 x 4 tiles of 32 px with 2 px borders, grayscale
    assert pngs[writer].std() > 10  # a real picture, not a blank
    # one float32 forward from the same weights (~1e-5 apart): at most a rounding step of uint8
    assert np.abs(pngs[writer] - pngs[reader]).max() <= 1


def test_checkpoint_resumes_optimizer_in_other_backend(spec, torch_state, tmp_path):
    checkpoint.save(tmp_path, 3, torch_state, CONFIG, spec, WRITER)
    state = checkpoint.load(tmp_path).state
    tf_gan = get_backend("tf").GAN(spec, state, CONFIG)
    exported = tf_gan.export_state()
    assert exported["opt"]["G"]["step"] == 3
    for name, value in state["opt"]["D"]["exp_avg"].items():
        assert np.array_equal(exported["opt"]["D"]["exp_avg"][name], value)


def test_garbage_file_is_unreadable(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(GanbenchError, match=r"bad.safetensors: unreadable checkpoint"):
        checkpoint.load(bad)


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(GanbenchError, match=r"not a ganbench checkpoint"):
        checkpoint.load(path)


def test_wrong_shapes_are_incompatible(tmp_path, spec, torch_state):
    path = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    tensors = checkpoint.flatten_state(torch_state)
    tensors["G.fc.weight"] = tensors["G.fc.weight"][:10]
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["ganbench"])
    meta["tensors_sha256"] = checkpoint.tensors_digest(tensors)  # whole, but of another shape
    save_file(tensors, str(path), metadata={"ganbench": json.dumps(checkpoint.with_digest(meta))})
    with pytest.raises(GanbenchError, match=r"incompatible checkpoint: G.fc.weight has shape \(10, 100\), model needs \(8192, 100\)"):
        checkpoint.load(path)


def test_a_tensor_forged_to_a_scalar_fails_the_digest(tmp_path, spec, torch_state):
    """Found by the fuzzer (seed 2026, case 9996): a (1,) tensor re-declared as a scalar () kept its
    bytes, and the digest, which had read its shape after np.ascontiguousarray made it (1,) again."""
    from safetensors import safe_open

    path = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    with safe_open(str(path), framework="numpy") as f:
        tensors, raw = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()["ganbench"]
    tensors["D.fc.bias"] = tensors["D.fc.bias"].reshape(())
    save_file(tensors, str(path), metadata={"ganbench": raw})  # both digests as written
    with pytest.raises(GanbenchError, match=r"step_0000001.safetensors: corrupt checkpoint \(its tensors do not match"):
        checkpoint.load(path)


def test_other_format_version_is_incompatible(tmp_path, spec, torch_state):
    path = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["ganbench"])
    meta["version"] = 99
    save_file(checkpoint.flatten_state(torch_state), str(path), metadata={"ganbench": json.dumps(checkpoint.with_digest(meta))})
    with pytest.raises(GanbenchError, match=r"incompatible checkpoint format 'ganbench-checkpoint' v99"):
        checkpoint.load(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(GanbenchError, match=r"no checkpoint found"):
        checkpoint.load(tmp_path)


def test_spec_hash_follows_the_computation_not_incidental_fields(spec):
    """Notes, the init and a switched-off field leave the hash; a changed eps or shape moves it."""
    bn = spec.generator.layers[2]
    assert type(bn).__name__ == "BatchNorm"

    def with_layer(layer):
        layers = list(spec.generator.layers)
        layers[2] = layer
        return dataclasses.replace(spec, generator=dataclasses.replace(spec.generator, layers=tuple(layers)))

    same = checkpoint.spec_hash(spec)
    assert checkpoint.spec_hash(dataclasses.replace(spec, notes=("a note",))) == same
    assert checkpoint.spec_hash(with_layer(dataclasses.replace(bn, init=("normal", 0.5)))) == same
    assert checkpoint.spec_hash(with_layer(dataclasses.replace(bn, eps=1e-3))) != same
    assert checkpoint.spec_hash(with_layer(dataclasses.replace(bn, num_features=256))) != same
    assert checkpoint.spec_hash(dataclasses.replace(spec, z_dim=128)) != same
    assert checkpoint.spec_hash(with_layer(dataclasses.replace(bn, no_affine=True))) != same


def test_legacy_hash_is_the_one_earlier_checkpoints_carry():
    """dcgan (1 channel) as every checkpoint before the computation hash recorded it."""
    from ganbench.archs import build_spec

    assert checkpoint.legacy_spec_hash(build_spec("dcgan", 1)) == "73ea2e3676c82b10"


def test_checkpoint_with_the_legacy_hash_loads(tmp_path, spec, torch_state):
    from safetensors import safe_open

    path = checkpoint.save(tmp_path, 3, torch_state, CONFIG, spec, {"backend": "torch"})
    with safe_open(str(path), framework="numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["ganbench"])
    meta["spec_hash"] = checkpoint.legacy_spec_hash(spec)
    save_file(tensors, str(path), metadata={"ganbench": json.dumps(checkpoint.with_digest(meta))})
    assert checkpoint.load(path).meta["step"] == 3


def test_a_run_whose_latest_lags_or_is_missing_loads_and_resumes(tmp_path, spec, torch_state):
    """A kill -9 between a step file's rename and the move of `latest` leaves `latest` one step
    behind, or absent after the first save: loading a run and resuming it take what `latest`
    names, else the newest step file."""
    first = checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    pointer = tmp_path / "checkpoints" / checkpoint.LATEST
    stale = pointer.read_bytes()
    newest = checkpoint.save(tmp_path, 2, torch_state, CONFIG, spec, WRITER)
    pointer.unlink()
    assert checkpoint.load(tmp_path).path == newest
    assert checkpoint.load_newest_valid(tmp_path)[0].path == newest
    pointer.write_bytes(stale)  # killed before `latest` moved to step 2
    assert checkpoint.load(tmp_path).path == first
    loaded, skipped = checkpoint.load_newest_valid(tmp_path)
    assert loaded.path == first and skipped == []


@pytest.mark.parametrize("metric,values,best", [("fid", [5.0, 7.0, 4.0, 4.5], [1, 1, 3, 3]),
                                                ("coverage", [0.5, 0.7, float("nan"), 0.6], [1, 2, 2, 2])])
def test_the_best_checkpoint_follows_its_metric_and_is_never_pruned(tmp_path, spec, torch_state, metric, values, best):
    """Steps 1-4 evaluated with `values`, checkpoints kept 1: `best` names the step with the best
    value so far (lower FD, higher coverage; NaN never), whose file pruning keeps; RUN/best,
    RUN/checkpoints/best and RUN/latest resolve by name."""
    from ganbench.training.loop import BestCheckpoint

    tracker = BestCheckpoint(tmp_path, metric)
    for step, value, expected in zip((1, 2, 3, 4), values, best):
        protected = tracker.protected
        path = checkpoint.save(tmp_path, step, torch_state, CONFIG, spec, WRITER, keep=1, protect=protected)
        assert {p.name for p in (tmp_path / "checkpoints").glob("step_*")} == {path.name, protected or path.name}
        if tracker.improves(value):
            tracker.keep(path, step, value)
        assert checkpoint.best_record(tmp_path) == {"checkpoint": f"step_{expected:07d}.safetensors", "step": expected,
                                                    "metric": metric, "value": values[expected - 1]}
        assert (tmp_path / "checkpoints" / f"step_{expected:07d}.safetensors").is_file()
    assert checkpoint.resolve(tmp_path / "best").name == checkpoint.resolve(tmp_path / "checkpoints" / "best").name == \
        f"step_{best[-1]:07d}.safetensors"
    assert checkpoint.resolve(tmp_path / "latest").name == "step_0000004.safetensors"
    assert BestCheckpoint(tmp_path, metric).protected == f"step_{best[-1]:07d}.safetensors"  # a resumed run's
    assert BestCheckpoint(tmp_path, "kid").protected is None  # another metric starts afresh


def test_a_run_without_a_best_checkpoint_says_how_to_keep_one(tmp_path, spec, torch_state):
    checkpoint.save(tmp_path, 1, torch_state, CONFIG, spec, WRITER)
    with pytest.raises(GanbenchError, match="keeps no best checkpoint \\(train with --eval-every"):
        checkpoint.resolve(tmp_path / "best")
