"""Bad input, wherever a user file or value enters: every case exits with code 2 and exactly one
line on stderr, no traceback, and leaves the file tree exactly as it was (nothing created,
changed or removed)."""

import gzip
import json

import numpy as np
import pytest

from ganbench.cli import main
from ganbench.config import TrainConfig
from ganbench.training import loop


@pytest.fixture(scope="module")
def ws(tmp_path_factory, data_dir):
    """A workspace of good and bad files; `run` is a finished 2-step dcgan run."""
    root = tmp_path_factory.mktemp("ws")
    loop.train(TrainConfig(steps=2, batch_size=16, sample_every=1, checkpoint_every=1), root / "run",
               data_dir=data_dir, progress=False)
    checkpoint = sorted((root / "run" / "checkpoints").glob("*.safetensors"))[-1]
    (root / "truncated.safetensors").write_bytes(checkpoint.read_bytes()[:5000])
    (root / "empty.safetensors").write_bytes(b"")
    (root / "image.png").write_bytes((root / "run" / "samples" / "step_0000001.png").read_bytes())
    (root / "texts").mkdir()
    (root / "texts" / "a.txt").write_text("not an image")
    (root / "broken_images").mkdir()
    (root / "broken_images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "empty_dir").mkdir()
    np.savez(root / "objects.npz", images=np.array([{"a": 1}, None], dtype=object))
    np.savez(root / "flat.npz", images=np.zeros((4, 5), np.uint8))
    (root / "not_json.json").write_text("{batch_size: 3")
    (root / "unknown_key.json").write_text(json.dumps({"batch_sise": 3}))
    (root / "wrong_type.json").write_text(json.dumps({"batch_size": "big"}))
    (root / "list.json").write_text(json.dumps([1, 2]))
    (root / "a_file").write_text("x")
    bad_data = root / "bad_data" / "cifar10" / "cifar-10-batches-bin"
    bad_data.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (bad_data / name).write_bytes(b"\x00" * 3072)  # not whole 3073-byte records
    (root / "cache" / "classifiers").mkdir(parents=True)
    (root / "cache" / "classifiers" / "mnist.safetensors").write_bytes(b"\x08\x00\x00\x00not safetensors")
    np.savez(root / "good.npz", images=np.zeros((4, 28, 28, 1), np.uint8))
    write_hostile_run_files(root, checkpoint)
    fashion = root / "bad_fashion" / "fashion-mnist"
    fashion.mkdir(parents=True)
    header = gzip.compress(b"\x00\x00\x08\x03" + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(784))
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (fashion / name).write_bytes(header[: len(header) // 2])  # a download cut short
    return root


HOSTILE_METADATA = {  # file name: metadata fields replaced (the digest dropped, as older checkpoints have none)
    "config_null": {"config": None}, "config_number": {"config": 3}, "config_list": {"config": [1]},
    "config_nan_lr": {"config": {**TrainConfig().to_dict(), "lr_g": float("nan")}},
    "opt_steps_number": {"opt_steps": 5}, "step_string": {"step": "x"}, "step_negative": {"step": -1},
    "arch_number": {"arch": 1}, "layout_list": {"layout": []}, "image_shape_short": {"image_shape": [1, 2]},
    "loss_scales_list": {"loss_scales": [1]}, "meta_sha256_number": {"meta_sha256": 7},
}


def write_hostile_run_files(root, checkpoint):
    """Checkpoints with damaged metadata, a run with a damaged config.json, log.jsonl or pointer,
    a forged npz header and IDX dims, a classifier whose metadata names no digest."""
    import shutil

    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(checkpoint), framework="numpy") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["ganbench"])
    del meta["meta_sha256"]
    for name, fields in HOSTILE_METADATA.items():
        save_file(tensors, str(root / f"{name}.safetensors"), metadata={"ganbench": json.dumps({**meta, **fields})})
    save_file(tensors, str(root / "signed_nested.safetensors"),
              metadata={"ganbench": json.dumps(meta)[:-1] + ', "writer": ' + "[" * 40 + "]" * 40 + "}"})
    for name, damage in {"bad_config": ("config.json", b'{"steps": null}'),
                         "binary_config": ("config.json", b"\xff\xfe{"),
                         "bad_log": ("log.jsonl", b'{"step": 1, "d_loss": "high"}\n'),
                         "bad_pointer": ("checkpoints/latest", b"\x00\xff../../etc/passwd")}.items():
        shutil.copytree(root / "run", root / name)
        (root / name / damage[0]).write_bytes(damage[1])
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776, 28, 28, 1), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    import zipfile

    with zipfile.ZipFile(root / "forged_shape.npz", "w") as archive:
        archive.writestr("images.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(784))
    forged_mnist = root / "forged_mnist" / "mnist"
    forged_mnist.mkdir(parents=True)
    (forged_mnist / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + bytes(784))
    cifar = root / "bad_labels" / "cifar10" / "cifar-10-batches-bin"
    cifar.mkdir(parents=True)
    for i in range(1, 6):
        (cifar / f"data_batch_{i}.bin").write_bytes(bytes([200]) + bytes(3072))
    (root / "weights.pth").write_bytes(b"PK\x03\x04 not the Inception weights")
    (root / "old_cache" / "classifiers").mkdir(parents=True)
    from safetensors.numpy import save

    (root / "old_cache" / "classifiers" / "mnist.safetensors").write_bytes(
        save({"w": np.zeros(2, np.float32)}, metadata={"ganbench": json.dumps({"arch": ["x"], "dataset": None})}))


def tree(root):
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


CASES = {  # name: (argv with {ws} for the workspace, a fragment of the one stderr line)
    # data
    "folder missing": ("train --dataset folder --image-dir {ws}/nowhere --out {ws}/o", "nowhere"),
    "folder empty": ("train --dataset folder --image-dir {ws}/empty_dir --out {ws}/o", "empty_dir"),
    "folder of non-images": ("train --dataset folder --image-dir {ws}/texts --out {ws}/o", "texts"),
    "folder is a file": ("train --dataset folder --image-dir {ws}/a_file --out {ws}/o", "a_file"),
    "folder with a broken image": ("train --dataset folder --image-dir {ws}/broken_images --out {ws}/o", "a.png"),
    "cifar10 files of the wrong size": ("train --dataset cifar10 --data-dir {ws}/bad_data --no-download --out {ws}/o",
                                        "whole number"),
    "missing dataset, no download": ("train --dataset stl10 --data-dir {ws}/empty_dir --no-download --out {ws}/o",
                                     "downloads are off"),
    "truncated dataset file": ("train --dataset fashion-mnist --data-dir {ws}/bad_fashion --no-download --out {ws}/o",
                               "train-images-idx3-ubyte.gz"),
    "train precision unknown": ("train --precision fp8 --out {ws}/o", "fp8"),
    "train data-limit not a count": ("train --data-limit 2.5 --out {ws}/o", "data-limit must be a count"),
    "train data-limit above the set": ("train --data-limit 100000 --out {ws}/o", "exceeds the 60000 images"),
    "train r1 with wgan-gp": ("train --loss wgan-gp --r1 1 --out {ws}/o", "r1/r2 need"),
    "train lecam-decay 1": ("train --lecam 0.3 --lecam-decay 1 --out {ws}/o", "lecam-decay in [0, 1)"),
    "train best-metric unknown": ("train --eval-every 5 --best-metric lpips --out {ws}/o", "unknown best-metric 'lpips'"),
    "train best-metric without evaluation": ("train --best-metric fid --out {ws}/o", "best-metric needs eval-every"),
    "train best-metric of classes, unconditional": ("train --eval-every 5 --best-metric intra_fid --out {ws}/o",
                                                    "best-metric intra_fid needs a class-conditional model"),
    "train cr with the simultaneous update": ("train --cr 10 --update simultaneous --out {ws}/o",
                                              "cr needs update 'alternating'"),
    # presets
    "preset missing": ("train --preset {ws}/none.json --out {ws}/o", "none.json"),
    "preset not JSON": ("train --preset {ws}/not_json.json --out {ws}/o", "not_json.json"),
    "preset unknown key": ("train --preset {ws}/unknown_key.json --out {ws}/o", "batch_sise"),
    "preset wrong type": ("train --preset {ws}/wrong_type.json --out {ws}/o", "batch_size"),
    "preset not an object": ("train --preset {ws}/list.json --out {ws}/o", "list.json"),
    "preset is a directory": ("train --preset {ws}/empty_dir --out {ws}/o", "empty_dir"),
    # numbers
    "NaN learning rate": ("train --lr nan --out {ws}/o", "nan"),
    "infinite learning rate": ("train --lr inf --out {ws}/o", "inf"),
    "negative batch": ("train --batch-size -3 --out {ws}/o", "-3"),
    "huge batch": ("train --batch-size 10000000 --out {ws}/o", "10000000"),
    "zero steps": ("train --steps 0 --out {ws}/o", "0"),
    "EMA decay above 1": ("train --ema-decay 1.5 --out {ws}/o", "1.5"),
    "zero width": ("train --width 0 --out {ws}/o", "0"),
    "time limit NaN": ("train --time-limit nan --out {ws}/o", "nan"),
    # run directories
    "out is a file": ("train --out {ws}/a_file", "a_file"),
    "out holds a run": ("train --out {ws}/run", "already holds another run"),
    "resume without a run": ("train --resume --out {ws}/empty_dir", "config.json not found"),
    "resume another model": ("train --resume --out {ws}/run --model sngan_cnn --steps 3", "model 'dcgan' -> 'sngan_cnn'"),
    # checkpoints
    "checkpoint missing": ("sample --checkpoint {ws}/none.safetensors", "none.safetensors"),
    "checkpoint empty": ("sample --checkpoint {ws}/empty.safetensors", "empty.safetensors"),
    "checkpoint truncated": ("sample --checkpoint {ws}/truncated.safetensors", "unreadable checkpoint"),
    "checkpoint is a PNG": ("sample --checkpoint {ws}/image.png", "image.png"),
    "checkpoint dir without one": ("sample --checkpoint {ws}/empty_dir", "no checkpoint found"),
    "class of an unconditional model": ("sample --checkpoint {ws}/run --class 3 --out {ws}/s.png", "not class-conditional"),
    "sample to a .jpg": ("sample --checkpoint {ws}/run --out {ws}/s.jpg", ".png"),
    "eval checkpoint missing": ("eval --checkpoint {ws}/none.safetensors", "none.safetensors"),
    "eval n zero": ("eval --checkpoint {ws}/run --n 0", "0"),
    # images and classifiers
    "npz of objects": ("eval --images {ws}/objects.npz --dataset mnist", "objects.npz"),
    "npz missing": ("eval --images {ws}/none.npz --dataset mnist", "none.npz"),
    "npz of the wrong shape": ("eval --images {ws}/flat.npz --dataset mnist --n 4", "flat.npz"),
    "images of non-images": ("eval --images {ws}/texts --dataset mnist", "texts"),
    "classifier for a dataset without one": ("classifier train --dataset stl10", "stl10"),
    "classifier file corrupt": ("eval --images {ws}/good.npz --dataset mnist --n 4", "unreadable classifier"),
    "unknown dataset to download": ("data download imagenet --data-dir {ws}/dl", "imagenet"),
    "inception weights to a data dir": ("data download inception --data-dir {ws}/dl", "not --data-dir"),
    "download with the classifier": ("eval --images {ws}/good.npz --dataset mnist --download", "inception features"),
    # hostile files: damaged metadata, config.json, log.jsonl, pointers, forged shapes
    **{f"checkpoint metadata {name}": (f"sample --checkpoint {{ws}}/{name}.safetensors --out {{ws}}/s.png",
                                       f"{name}.safetensors: ") for name in HOSTILE_METADATA},
    "checkpoint metadata nested 40 deep": ("sample --checkpoint {ws}/signed_nested.safetensors --out {ws}/s.png",
                                           "nested more than 32 levels deep"),
    "eval of a checkpoint with a null config": ("eval --checkpoint {ws}/config_null.safetensors --n 4",
                                                "the config must be a JSON object, got null"),
    "resume with a damaged config.json": ("train --resume --out {ws}/bad_config --steps 3",
                                          "config.json: config key 'steps' must be int, got None"),
    "resume with a binary config.json": ("train --resume --out {ws}/binary_config --steps 3", "not valid JSON"),
    "plot a run with a damaged config.json": ("plot {ws}/bad_config --out {ws}/p.png", "config.json"),
    "plot a damaged log.jsonl": ("plot {ws}/bad_log --out {ws}/p.png", "log.jsonl, line 1: 'd_loss' must be a number"),
    "sample a run with a damaged pointer": ("sample --checkpoint {ws}/bad_pointer --out {ws}/s.png", "damaged pointer"),
    "npz with a forged shape": ("eval --images {ws}/forged_shape.npz --dataset mnist", "claims shape (1099511627776"),
    "IDX with forged dims": ("train --data-dir {ws}/forged_mnist --out {ws}/o",
                             "where dims (4294967295, 4294967295, 4294967295) need"),
    "CIFAR-10 label out of range": ("train --dataset cifar10 --data-dir {ws}/bad_labels --no-download --out {ws}/o",
                                    "label 200 out of range"),
    "inception weights that are not": ("eval --images {ws}/good.npz --dataset mnist --features inception "
                                       "--inception-weights {ws}/weights.pth --n 4", "does not match"),
    "classifier whose metadata is of the wrong types": ("eval --images {ws}/good.npz --dataset mnist --n 4",
                                                        "is outdated; retrain it"),
    # export
    "export a truncated checkpoint": ("export --checkpoint {ws}/truncated.safetensors --format torchscript --out {ws}/e",
                                      "unreadable checkpoint"),
    "export into a folder that holds files": ("export --checkpoint {ws}/run --format onnx --out {ws}/texts",
                                              "exists and is not an empty folder"),
    "export to an unknown format": ("export --checkpoint {ws}/run --format h5", "invalid choice: 'h5'"),
    "export a checkpoint with a null config": ("export --checkpoint {ws}/config_null.safetensors --format onnx "
                                               "--out {ws}/e", "the config must be a JSON object, got null"),
    # plot
    "plot a folder that is no run": ("plot {ws}/empty_dir --out {ws}/p.png", "not a run directory"),
    "plot an unknown metric": ("plot {ws}/run --metrics eval/fid --out {ws}/p.png", "unknown metric 'eval/fid'"),
    "plot to a .jpg": ("plot {ws}/run --out {ws}/p.jpg", ".png or .svg"),
    "plot smoothing 1": ("plot {ws}/run --smoothing 1 --out {ws}/p.png", "[0, 1)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_one_line_and_nothing_changed(ws, capsys, data_dir, name, monkeypatch):
    monkeypatch.setenv("GANBENCH_DATA", str(data_dir))
    # never the user's cache: the workspace's corrupt classifier, or a cache that does not exist
    # (and must not be made), so the bad-image cases meet no classifier and are named first
    cache = "cache" if "classifier file" in name else "old_cache" if "wrong types" in name else "no_cache"
    monkeypatch.setenv("GANBENCH_CACHE", str(ws / cache))
    argv, fragment = CASES[name]
    before = tree(ws)
    try:
        code = main(argv.format(ws=ws).split())
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert tree(ws) == before


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


def test_a_read_only_out_is_refused(tmp_path, capsys, data_dir):
    """Skipped where permissions do not bind (root with CAP_DAC_OVERRIDE, as in CI); runs as a
    user, or as root without that capability (setpriv --bounding-set -dac_override ...)."""
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    if not _write_fails(out):
        out.chmod(0o755)
        pytest.skip("this process writes into read-only directories (root)")
    try:
        code = main(["train", "--out", str(out / "run"), "--steps", "1", "--data-dir", str(data_dir), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Permission denied" in err, err
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def _write_fails(folder) -> bool:
    try:
        (folder / "probe").write_text("x")
    except PermissionError:
        return True
    (folder / "probe").unlink()
    return False
