"""`ganbench export`: for dcgan, sngan_resnet, wgan_gp_resnet and biggan (small widths), trained in
each backend, every format (ONNX by torch.onnx and by tf2onnx, TorchScript, SavedModel) gives the
images `ganbench sample` gives for the same z and labels (max difference 1 grey level), run in a
fresh interpreter in which `import ganbench` fails; the model card's own snippet runs as written."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ganbench
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.sampling import sample_labels, sample_noise
from ganbench.training import loop

MODELS = {  # model: the TrainConfig fields of its 1-step run
    "dcgan": {},
    "sngan_resnet": {"width": 0.125, "loss": "hinge"},
    "wgan_gp_resnet": {"width": 0.125, "loss": "wgan-gp"},
    "biggan": {"width": 0.0625, "loss": "hinge", "ema_decay": 0.9},
}
EXPORTS = {"onnx-torch": ("onnx", "torch"), "onnx-tf": ("onnx", "tf"), "torchscript": ("torchscript", "torch"),
           "savedmodel": ("savedmodel", "torch")}
PIXEL_TOLERANCE = 1  # grey levels: the exported graph rounds the same float32 G output, up to kernel order
N = 12
# Each runner loads the files of its format with the format's own library, in an interpreter
# where ganbench cannot be imported, and writes {name: images} to out.npz.
NO_GANBENCH = ("import sys\nsys.modules['ganbench'] = None\ntry:\n    import ganbench\n    raise SystemExit('ganbench imported')\n"
               "except ImportError:\n    pass\nimport json, numpy\ncases = json.load(open('cases.json'))\nout = {}\n")
RUNNERS = {
    "onnx": "import onnxruntime\nfor name, (path, inputs) in cases.items():\n"
            "    session = onnxruntime.InferenceSession(path)\n"
            "    feed = {k: numpy.load(v) for k, v in inputs.items()}\n"
            "    out[name] = session.run(['images'], feed)[0]\n",
    "torchscript": "import torch\nfor name, (path, inputs) in cases.items():\n"
                   "    module = torch.jit.load(path)\n"
                   "    out[name] = module(*[torch.from_numpy(numpy.load(v)) for v in inputs.values()]).numpy()\n",
    "savedmodel": "import tensorflow as tf\nfor name, (path, inputs) in cases.items():\n"
                  "    module = tf.saved_model.load(path)\n"
                  "    out[name] = module.generate(*[tf.constant(numpy.load(v)) for v in inputs.values()]).numpy()\n",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir) -> dict:
    """(model, backend) -> a run directory of 1 training step."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for model, fields in MODELS.items():
        for backend in ("torch", "tf"):
            config = TrainConfig(model=model, backend=backend, steps=1, batch_size=8, sample_every=1000,
                                 checkpoint_every=1000, **fields).validate()
            out[model, backend] = root / f"{model}-{backend}"
            loop.train(config, out[model, backend], data_dir=data_dir, progress=False)
    return out


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict:
    """Every (model, backend, export) exported, its inputs saved, run by RUNNERS in fresh
    interpreters; -> {(model, backend, export): (images from the file, images from ganbench sample)}."""
    work = tmp_path_factory.mktemp("exported")
    cases, expected = {fmt: {} for fmt in RUNNERS}, {}
    for (model, backend), run in runs.items():
        generator = ganbench.load_generator(run)
        z = sample_noise(generator.spec, N, 5, 0)
        labels = sample_labels(generator.spec, N)
        inputs = {"z": work / f"{model}-{backend}-z.npy"}
        np.save(inputs["z"], z)
        if labels is not None:
            inputs["labels"] = work / f"{model}-{backend}-labels.npy"
            np.save(inputs["labels"], labels)
        reference = generator.sample(N, seed=5).transpose(0, 3, 1, 2)  # what `ganbench sample` draws
        for name, (fmt, builder) in EXPORTS.items():
            key = f"{model}-{backend}-{name}"
            path = ganbench.export(run, fmt, work / key, onnx_from=builder)
            cases[fmt][key] = (str(path), {k: str(v) for k, v in inputs.items()})
            expected[key] = reference
    results = {}
    for fmt, code in RUNNERS.items():
        folder = work / f"run-{fmt}"
        folder.mkdir()
        (folder / "cases.json").write_text(json.dumps(cases[fmt]))
        done = subprocess.run([sys.executable, "-c", NO_GANBENCH + code + "numpy.savez('out.npz', **out)\n"],
                              cwd=folder, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "OMP_NUM_THREADS": "2"})
        assert done.returncode == 0, done.stderr[-3000:]
        with np.load(folder / "out.npz") as out:
            results.update({key: (out[key], expected[key]) for key in out.files})
    return results


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("export", list(EXPORTS))
def test_exported_file_draws_what_ganbench_sample_draws(exported, model, backend, export):
    images, reference = exported[f"{model}-{backend}-{export}"]
    assert images.dtype == np.uint8 and images.shape == reference.shape
    assert np.abs(images.astype(int) - reference.astype(int)).max() <= PIXEL_TOLERANCE


def test_the_two_onnx_exporters_agree(exported):
    """One more proof that the backends hold the same model: torch.onnx's and tf2onnx's files."""
    for (model, backend) in [(m, b) for m in MODELS for b in ("torch", "tf")]:
        a, _ = exported[f"{model}-{backend}-onnx-torch"]
        b, _ = exported[f"{model}-{backend}-onnx-tf"]
        assert np.abs(a.astype(int) - b.astype(int)).max() <= PIXEL_TOLERANCE


def test_the_model_card_states_the_model_and_its_snippet_runs(runs, tmp_path):
    run = runs["biggan", "tf"]
    (run / "eval.json").write_text(json.dumps({  # as `ganbench eval --checkpoint RUN` writes it
        "metrics": {"fid": 12.3456, "score": 8.5}, "source": {"step": 1},
        "protocol": {"n": 1000, "reference": "mnist test", "features": "ganbench mnist classifier"}}))
    model_file = ganbench.export(run, "onnx", tmp_path / "card")
    (run / "eval.json").unlink()
    card = (tmp_path / "card" / "README.md").read_text()
    front = card.split("---\n")[1]
    assert front.splitlines() == ["license: mit", "library_name: ganbench", "tags:", "- gan",
                                  "- conditional-image-generation", "- onnx", "datasets:", "- ylecun/mnist"]
    assert "# biggan on mnist (onnx)" in card and "exported from step 1 (ema generator)" in card
    assert "`labels` int64 [N] in 0..9" in card and "uint8 [N, 1, 32, 32]" in card
    assert ("Last evaluation: fid 12.35, score 8.5 (N=1000, reference mnist test, ganbench mnist classifier; "
            "step 1)") in card
    assert "(tf backend)" in card and "Training data: MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert len(snippet.strip().splitlines()) == 3
    done = subprocess.run([sys.executable, "-c", snippet + "print(images.shape, images.dtype)"], cwd=model_file.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "(16, 1, 32, 32) uint8", done.stderr[-2000:]
    assert (tmp_path / "card" / "sample.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metadata_and_rgb_and_the_raw_generator(runs, tmp_path):
    import onnx
    import onnxruntime

    run = runs["biggan", "torch"]
    path = ganbench.export(run, "onnx", tmp_path / "rgb", use_ema=False, rgb=True)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    generator = ganbench.load_generator(run, use_ema=False)
    assert (meta["z_dim"], meta["num_classes"], meta["generator"], meta["output"]) == (
        generator.spec.z_dim, 10, "raw", "uint8 [N, 3, 32, 32], 0..255")
    assert meta["z_distribution"].startswith("normal(0, 1)") and meta["exported_by"] == "torch"
    z, labels = sample_noise(generator.spec, 4, 0, 0), sample_labels(generator.spec, 4)
    images = onnxruntime.InferenceSession(str(path)).run(["images"], {"z": z, "labels": labels})[0]
    gray = generator.sample(4).transpose(0, 3, 1, 2)
    assert images.shape == (4, 3, 32, 32) and all(np.abs(images[:, c:c + 1].astype(int) - gray).max() <= 1
                                                   for c in range(3))


def test_export_refuses_a_used_folder_and_names_a_missing_extra(runs, tmp_path, capsys, monkeypatch):
    from ganbench import exporter
    from ganbench.cli import main

    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["export", "--checkpoint", str(runs["dcgan", "torch"]), "--format", "onnx", "--out", str(used)]) == 2
    assert capsys.readouterr().err == f"ganbench: error: --out {used} exists and is not an empty folder: nothing is overwritten\n"
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    monkeypatch.setattr(exporter, "find_spec", lambda name: None if name == "onnx" else object())
    with pytest.raises(GanbenchError, match=r"export to onnx needs onnx: pip install 'ganbench\[export\]'"):
        ganbench.export(runs["dcgan", "torch"], "onnx", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with pytest.raises(GanbenchError, match="unknown export format 'h5'"):
        ganbench.export(runs["dcgan", "torch"], "h5", tmp_path / "new")
    monkeypatch.undo()
    run = runs["dcgan", "torch"]  # by default into the run, or beside a loose checkpoint file
    assert ganbench.export(run, "torchscript") == run / "export-torchscript" / "generator.pt"
    loose = tmp_path / "loose.safetensors"
    loose.write_bytes(sorted((run / "checkpoints").glob("step_*.safetensors"))[-1].read_bytes())
    assert ganbench.export(loose, "torchscript") == tmp_path / "export-torchscript" / "generator.pt"


def test_torch_fidelity_scores_the_exported_onnx_generator(runs, tmp_path, mnist_train):
    """torch-fidelity's `fidelity` command line (its main(), with ganbench's stand-in extractor
    registered as the Inception tests register it) reads the --rgb ONNX file as a generator."""
    from PIL import Image

    model = ganbench.export(runs["dcgan", "tf"], "onnx", tmp_path / "onnx", rgb=True)
    reals = tmp_path / "reals"
    reals.mkdir()
    for i, image in enumerate(mnist_train[0][:64]):
        Image.fromarray(np.pad(image[..., 0], 2)).convert("RGB").save(reals / f"{i}.png")
    weights = tmp_path / "stand-in.bin"
    weights.write_bytes(np.random.default_rng(0).standard_normal((48, 10)).astype(np.float32).tobytes())
    tests = Path(__file__).parent
    argv = ["fidelity", "--input1", str(model), "--input1-model-z-type", "normal", "--input1-model-z-size", "100",
            "--input1-model-num-samples", "64", "--input2", str(reals), "--fid", "--feature-extractor",
            "ganbench-test-stand-in", "--feature-layer-fid", "pool", "--feature-extractor-weights-path", str(weights),
            "--cpu", "--no-cache", "--json", "--silent", "--batch-size", "32"]
    # the stand-in returning only the features torch-fidelity asks for (FID alone: the pool)
    code = (f"import sys\nsys.path.insert(0, {str(tests)!r})\nfrom test_inception import STAND_IN, StandIn\n"
            "from torch_fidelity.registry import register_feature_extractor\n\n\nclass Requested(StandIn):\n"
            "    def forward(self, x):\n        found = dict(zip(('pool', 'logits'), super().forward(x)))\n"
            "        return tuple(found[name] for name in self.features_list)\n\n\n"
            "register_feature_extractor(STAND_IN, Requested)\n"
            f"import torch_fidelity.fidelity\nsys.argv = {argv!r}\ntorch_fidelity.fidelity.main()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout[done.stdout.index("{"):])
    assert scores["frechet_inception_distance"] > 0


def test_export_speed_benchmark_runs(runs, tmp_path):
    """benchmarks/export_speed.py's smoke test: one timed call per row."""
    script = Path(__file__).parent.parent / "benchmarks" / "export_speed.py"
    done = subprocess.run([sys.executable, str(script), "--checkpoint", str(runs["biggan", "tf"]), "--repeats", "1",
                           "--warmup", "0", "--out", str(tmp_path / "speed.json")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "speed.json").read_text())
    assert [(r["runner"], r["batch"]) for r in result["rows"]] == [
        (runner, batch) for batch in (1, 64)
        for runner in ("ganbench sample (torch)", "ganbench sample (tf)", "onnxruntime (exported)")]
    assert all(r["img_per_s"] == pytest.approx(r["batch"] / r["median_s"]) for r in result["rows"])
    assert "| onnxruntime (exported) | 64 |" in done.stdout and result["machine"]["cores"] >= 1
