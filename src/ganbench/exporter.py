"""`ganbench export`: a checkpoint's generator as a file that runs without ganbench (ONNX,
TorchScript or a TensorFlow SavedModel), with a model card and a sample grid beside it.

Every format takes z float32 [N, z_dim] (N dynamic; and labels int64 [N] for a conditional G) and
returns the uint8 NCHW images (0..255) that `ganbench sample` writes for the same z and labels:
G (G_ema by default) in eval mode, then ganbench's to_uint8. The caller draws z: N(0, 1), or
truncated by redrawing the elements outside [-t, t]. Checkpoints are portable, so either
backend's checkpoint exports to every format: ONNX and TorchScript through the torch backend, the
SavedModel through the TensorFlow one. The framework code is in backends/<name>/export.py.
"""

import json
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

from ganbench import __version__, validation
from ganbench.errors import GanbenchError

# format -> (file name in the export folder, packages it needs, their extra); ONNX by either backend
FORMATS = {
    "onnx": ("generator.onnx", ("onnx",), "export"),
    "torchscript": ("generator.pt", ("torch",), "torch"),
    "savedmodel": ("generator", ("tensorflow",), "tf"),
}
BUILDERS = {"torch": ("torch",), "tf": ("tensorflow", "tf2onnx")}  # ONNX's exporter: torch.onnx, or tf2onnx
DATASET_CARDS = {  # dataset -> (Hugging Face dataset id, the data's licence)
    "mnist": ("ylecun/mnist", "MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0"),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", "Fashion-MNIST: Zalando SE, MIT"),
    "cifar10": ("uoft-cs/cifar10", "CIFAR-10: Alex Krizhevsky, Vinod Nair and Geoffrey Hinton; no licence stated"),
    "stl10": ("tanganke/stl10", "STL-10: Adam Coates, Honglak Lee and Andrew Ng; no licence stated"),
    "folder": (None, "an image folder of the user's: its own licence"),
}
LOADERS = {  # how to run each format, three lines (NAME: the file; INPUTS: its arguments)
    "onnx": "import onnxruntime, numpy\nsession = onnxruntime.InferenceSession('NAME')\n"
            "images = session.run(['images'], INPUTS_ORT)[0]  # uint8 [N, C, H, W]",
    "torchscript": "import torch\ngenerator = torch.jit.load('NAME')\n"
                   "images = generator(INPUTS_TORCH)  # uint8 [N, C, H, W]",
    "savedmodel": "import tensorflow as tf\ngenerator = tf.saved_model.load('NAME')\n"
                  "images = generator.generate(INPUTS_TF)  # uint8 [N, C, H, W]",
}


def export(checkpoint, format: str = "onnx", out=None, use_ema: bool = True, rgb: bool = False,
           onnx_from: str = "torch") -> Path:
    """Export the checkpoint's generator (a .safetensors file or a run directory) into the new or
    empty folder `out` (default: <run>/export-<format>, or beside a loose checkpoint file): the
    model file, README.md (a model card) and sample.png, computing in float32 whatever precision
    the run trained in. onnx_from: the backend whose exporter writes the ONNX graph (torch.onnx, or
    tf2onnx). Returns the model file's path."""
    if format not in FORMATS:
        raise GanbenchError(f"unknown export format {format!r} (choose from {', '.join(FORMATS)})")
    if onnx_from not in BUILDERS:
        raise GanbenchError(f"unknown ONNX exporter {onnx_from!r} (choose from {', '.join(BUILDERS)})")
    file_name, packages, extra = FORMATS[format]
    backend = {"onnx": onnx_from, "torchscript": "torch", "savedmodel": "tf"}[format]
    if format == "onnx":
        packages = packages + BUILDERS[onnx_from]
    missing = [p for p in packages if find_spec(p) is None]
    if missing:
        raise GanbenchError(f"export to {format} needs {', '.join(missing)}: pip install 'ganbench[{extra}]'")
    from ganbench import checkpoint as checkpoints
    from ganbench.sampling import load_generator

    source = checkpoints.resolve(checkpoint)
    run = source.parent.parent if source.parent.name == checkpoints.CHECKPOINT_DIR else source.parent
    out = Path(out) if out else run / f"export-{format}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanbenchError(f"--out {out} exists and is not an empty folder: nothing is overwritten")
    generator = load_generator(source, backend, use_ema=use_ema, precision="fp32")
    meta = metadata(generator, format, rgb, backend)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        save_model(generator, meta, staging / file_name, rgb)
        from ganbench.images import save_grid

        grid = generator.sample_classes(8) if generator.num_classes else generator.sample(64)
        save_grid(grid, staging / "sample.png", ncols=8)
        (staging / "README.md").write_text(model_card(meta, file_name, evaluation(run, source)))
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()  # empty, checked above
        shutil.move(str(staging), str(out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / file_name


def save_model(generator, meta: dict, path: Path, rgb: bool) -> None:
    """The backend's exporter writes the file; an ONNX file then gets its output named `images`
    and the metadata, whichever exporter wrote it."""
    import importlib

    from ganbench.ema import sampling_generator

    backend = importlib.import_module(f"ganbench.backends.{generator.backend}.export")
    getattr(backend, f"save_{meta['format']}")(sampling_generator(generator.gan), meta, path, rgb)
    if meta["format"] == "onnx":
        label_onnx(path, meta)


def label_onnx(path: Path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["images" if name == old else name for name in node.output]
    model.graph.output[0].name = "images"
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(path))


def metadata(generator, format: str, rgb: bool, exported_by: str) -> dict:
    """What the file records of its model (ONNX metadata_props, TorchScript's ganbench.json, the
    SavedModel's ganbench_json variable) and what its model card states."""
    spec, config = generator.spec, generator.config
    channels, height, width = spec.image_shape
    return {
        "format": format, "exported_by": exported_by, "ganbench_version": __version__, "model": spec.arch, "dataset": config.dataset,
        "step": generator.step, "generator": generator.name, "trained_by": generator.meta.get("writer", {}).get("backend"),
        "z_dim": spec.z_dim, "z_distribution": "normal(0, 1), float32; truncation: redraw the elements outside [-t, t]",
        "num_classes": generator.num_classes,
        "output": f"uint8 [N, {3 if rgb and channels == 1 else channels}, {height}, {width}], 0..255",
        "recipe": {k: config.to_dict()[k] for k in ("loss", "n_dis", "batch_size", "lr_g", "lr_d", "beta1", "beta2",
                                                    "ema_decay", "width", "steps", "seed", "backend")},
    }


def evaluation(run: Path, source: Path) -> dict | None:
    """The run's last `ganbench eval` result (eval.json beside the checkpoint or in its run), if
    any; a damaged one is refused by name, as every file ganbench reads."""
    for candidate in dict.fromkeys((source.parent / "eval.json", run / "eval.json")):
        if candidate.is_file():
            result = validation.json_object(validation.read_json(candidate, "evaluation"), candidate, "an evaluation")
            for field in ("metrics", "protocol", "source"):
                validation.json_object(result.get(field, {}), candidate, field)
            for name, value in result.get("metrics", {}).items():
                validation.number(value, candidate, f"metric {validation.short(name)}")
            return result
    return None


def model_card(meta: dict, file_name: str, result: dict | None) -> str:
    """README.md in the Hugging Face convention: YAML front matter, then what the model is."""
    hf_dataset, data_licence = DATASET_CARDS.get(meta["dataset"], (None, "unknown"))
    kind = "conditional-image-generation" if meta["num_classes"] else "unconditional-image-generation"
    front = ["---", "license: mit", "library_name: ganbench", "tags:", "- gan", f"- {kind}", f"- {meta['format']}"]
    if hf_dataset:
        front += ["datasets:", f"- {hf_dataset}"]
    front.append("---")
    inputs = inputs_text(meta)
    loader = LOADERS[meta["format"]].replace("NAME", file_name)
    for key, text in inputs.items():
        loader = loader.replace(key, text)
    if result:
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in result.get("metrics", {}).items())
        protocol = result.get("protocol", {})
        scored = (f"{metrics} (N={protocol.get('n')}, reference {protocol.get('reference')}, {protocol.get('features')}; "
                  f"step {result.get('source', {}).get('step')})")
    else:
        scored = "none recorded (run `ganbench eval --checkpoint RUN` before exporting to have it here)"
    recipe = ", ".join(f"{k} {v}" for k, v in meta["recipe"].items())
    return "\n".join(front + [
        "", f"# {meta['model']} on {meta['dataset']} ({meta['format']})", "",
        f"A {'class-conditional ' if meta['num_classes'] else ''}GAN generator trained with "
        f"ganbench {meta['ganbench_version']} ({meta['trained_by']} backend), exported "
        f"from step {meta['step']} ({meta['generator']} generator). It needs no ganbench to run.", "",
        f"- Input: `z` float32 [N, {meta['z_dim']}], drawn from {meta['z_distribution']}"
        + (f"; `labels` int64 [N] in 0..{meta['num_classes'] - 1}" if meta["num_classes"] else ""),
        f"- Output: `images` {meta['output']}, the pixels `ganbench sample` writes for the same inputs",
        f"- Recipe: {recipe}",
        f"- Last evaluation: {scored}",
        f"- Training data: {data_licence}", "",
        "![samples](sample.png)", "", "```python", loader, "```", "",
    ])


def inputs_text(meta: dict) -> dict:
    z = f"numpy.random.default_rng(0).standard_normal((16, {meta['z_dim']}), dtype=numpy.float32)"
    if not meta["num_classes"]:
        return {"INPUTS_ORT": "{'z': " + z + "}", "INPUTS_TORCH": f"torch.randn(16, {meta['z_dim']})",
                "INPUTS_TF": f"tf.random.normal((16, {meta['z_dim']}))"}
    return {"INPUTS_ORT": "{'z': " + z + ", 'labels': numpy.arange(16) % " + str(meta["num_classes"]) + "}",
            "INPUTS_TORCH": f"torch.randn(16, {meta['z_dim']}), torch.arange(16) % {meta['num_classes']}",
            "INPUTS_TF": f"tf.random.normal((16, {meta['z_dim']})), tf.range(16, dtype=tf.int64) % {meta['num_classes']}"}
