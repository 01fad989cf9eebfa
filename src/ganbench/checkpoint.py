"""Checkpoints: one safetensors file of canonical tensors with JSON metadata in its header.

Tensor names: "G.<param>", "D.<param>", "G_ema.<param>" (weights and BN buffers, PyTorch layout) and
"opt.<G|D>.<exp_avg|exp_avg_sq>.<param>" (Adam moments). The metadata holds the step, the
resolved config, the Adam step counts, and who wrote it. Either backend reads what either wrote.

Writes are atomic: temp file, fsync, os.replace, fsync of the directory; only then does the
`latest` pointer move. A kill -9 at any moment leaves the previous checkpoint loadable.

Corruption is detected, not trusted: the metadata records the sha256 of every tensor's name,
dtype, shape and bytes (`tensors_sha256`) and of the rest of the metadata (`meta_sha256`), both
checked on every load, after every metadata field's type and range; a truncated file fails to
parse. Checkpoints written before a digest existed load without that check.
"""

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as st_save

from ganbench import validation
from ganbench.errors import GanbenchError
from ganbench.fileio import atomic_write, write_json

FORMAT = "ganbench-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
BEST = "best"  # JSON: the checkpoint with the best periodic-evaluation value so far (--best-metric)
MOMENTS = ("exp_avg", "exp_avg_sq")
UNHASHED_FIELDS = ("notes", "init")
FIELDS_ADDED_AFTER_V1 = ("sn_eps", "no_affine", "prelude", "num_classes")  # see legacy_spec_hash
STEP_FILE = re.compile(r"step_[0-9]{7,}\.safetensors")
EMA = "G_ema"  # G's moving average, when the run keeps one: the same names and shapes as G


def spec_hash(spec) -> str:
    """Identifies an architecture by what defines its computation: z size, image shape, and each
    layer's kind and fields (names, shapes, eps, momentum, padding...), in order. Not hashed: the
    init (it sets the first weights, not the function), `notes`, and fields left at a default that
    switches a feature off (False, None, 0, empty), so a new optional feature leaves the
    checkpoints of models that do not use it loadable."""
    described = {"z_dim": spec.z_dim, "image_shape": list(spec.image_shape),
                 "networks": {key: describe(net) for key, net in spec.networks.items()}}
    if spec.num_classes:
        described["num_classes"] = spec.num_classes
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def describe(item):
    """JSON-able description of a spec dataclass (recursively), without switched-off fields."""
    if dataclasses.is_dataclass(item):
        fields = {f.name: describe(getattr(item, f.name)) for f in dataclasses.fields(item)
                  if f.name not in UNHASHED_FIELDS and not at_off_default(item, f)}
        return {"__type__": type(item).__name__, **fields}
    if isinstance(item, (tuple, list)):
        return [describe(x) for x in item]
    return item


def at_off_default(item, field) -> bool:
    """The field is at its default, and that default switches something off (False, None, 0, ())."""
    value, default = getattr(item, field.name), field.default
    return type(value) is type(default) and value == default and not default


def legacy_spec_hash(spec) -> str:
    """The hash that checkpoints written before spec_hash carry: the sha256 of the spec's repr as
    it was then (fields added since, at their defaults, left out), so those checkpoints still load."""
    return hashlib.sha256(legacy_repr(spec).encode()).hexdigest()[:16]


def legacy_repr(item) -> str:
    if dataclasses.is_dataclass(item):
        shown = [f for f in dataclasses.fields(item)
                 if not (f.name in FIELDS_ADDED_AFTER_V1 and getattr(item, f.name) == f.default)]
        return f"{type(item).__qualname__}({', '.join(f'{f.name}={legacy_repr(getattr(item, f.name))}' for f in shown)})"
    if isinstance(item, tuple):
        return "(" + ", ".join(legacy_repr(x) for x in item) + ("," if len(item) == 1 else "") + ")"
    if isinstance(item, list):
        return "[" + ", ".join(legacy_repr(x) for x in item) + "]"
    return repr(item)


def tensors_digest(tensors: dict) -> str:
    """sha256 over the tensors in name order: each one's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]  # its own shape: ascontiguousarray would make a scalar's () into (1,)
        digest.update(f"{name}|{value.dtype.str}|{list(value.shape)}|".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def flatten_state(state: dict) -> dict:
    tensors = {}
    for key, arrays in state["nets"].items():
        for name, value in arrays.items():
            tensors[f"{key}.{name}"] = value
    for key, opt in (state.get("opt") or {}).items():
        for moment in MOMENTS:
            for name, value in opt[moment].items():
                tensors[f"opt.{key}.{moment}.{name}"] = value
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}


def unflatten_state(tensors: dict, opt_steps: dict, spec) -> dict:
    """Rebuild the backend state, checking every tensor the spec needs is there with its shape."""
    state = {"nets": {}, "opt": {}}
    for key, net in spec.networks.items():
        shapes = {**net.param_shapes(), **net.buffer_shapes()}
        state["nets"][key] = {name: _take(tensors, f"{key}.{name}", shape) for name, shape in shapes.items()}
        if key == "G" and any(name.startswith(f"{EMA}.") for name in tensors):
            state["nets"][EMA] = {name: _take(tensors, f"{EMA}.{name}", shape) for name, shape in shapes.items()}
        state["opt"][key] = {"step": int(opt_steps.get(key, 0))}
        for moment in MOMENTS:
            state["opt"][key][moment] = {
                name: _take(tensors, f"opt.{key}.{moment}.{name}", shape)
                for name, shape in net.param_shapes().items()
            }
    return state


def _take(tensors: dict, name: str, shape) -> np.ndarray:
    if name not in tensors:
        raise GanbenchError(f"incompatible checkpoint: tensor {name} is missing")
    value = tensors[name]
    if value.dtype != np.float32:
        raise GanbenchError(f"incompatible checkpoint: {name} is {value.dtype}, not float32")
    if tuple(value.shape) != tuple(shape):
        raise GanbenchError(f"incompatible checkpoint: {name} has shape {tuple(value.shape)}, model needs {tuple(shape)}")
    return value


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:07d}.safetensors"


def save(run_dir, step: int, state: dict, config, spec, writer: dict, keep: int = 3, protect: str | None = None) -> Path:
    """Write the checkpoint of `step`, move `latest` to it, and keep the newest `keep` files and
    the one named `protect` (the best checkpoint)."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "config": config.to_dict(),
        "arch": spec.arch,
        "spec_hash": spec_hash(spec),
        "image_shape": list(spec.image_shape),
        "opt_steps": {key: int(opt["step"]) for key, opt in state["opt"].items()},
        "layout": "canonical (PyTorch): Dense (out,in), Conv OIHW, ConvT IOHW, flatten (C,H,W)",
        "writer": writer,
    }
    if state.get("loss_scales"):  # fp16's dynamic loss scales (ganbench.precision), for an exact resume
        meta["loss_scales"] = state["loss_scales"]
    if state.get("lecam"):  # LeCam's moving averages of D's outputs, for an exact resume
        meta["lecam"] = state["lecam"]
    tensors = flatten_state(state)
    meta["tensors_sha256"] = tensors_digest(tensors)
    meta = with_digest(meta)
    path = checkpoint_path(run_dir, step)
    atomic_write(path, st_save(tensors, metadata={"ganbench": json.dumps(meta)}))
    atomic_write(path.parent / LATEST, (path.name + "\n").encode())
    for old in sorted(path.parent.glob("step_*.safetensors"))[:-keep]:
        if old.name != protect:
            old.unlink(missing_ok=True)
    return path


def best_record(run_dir) -> dict | None:
    """The run's checkpoints/best ({"checkpoint", "step", "metric", "value"}), checked field by
    field; None when the run keeps none."""
    path = Path(run_dir) / CHECKPOINT_DIR / BEST
    if not path.is_file():
        return None
    record = validation.json_object(validation.read_json(path, "best-checkpoint record"), path, "the record")
    return {"checkpoint": validation.string(record.get("checkpoint"), path, "checkpoint", STEP_FILE),
            "step": validation.integer(record.get("step"), path, "step"),
            "metric": validation.string(record.get("metric"), path, "metric"),
            "value": validation.number(record.get("value"), path, "value")}


def write_best(path: Path, step: int, metric: str, value: float) -> dict:
    """Point checkpoints/best at the checkpoint file `path` (written before: a kill leaves the
    previous record, whose file is never pruned)."""
    record = {"checkpoint": path.name, "step": int(step), "metric": metric, "value": float(value)}
    write_json(path.parent / BEST, record)
    return record


def resolve(path) -> Path:
    """A checkpoint file, or a run/checkpoints directory: then the checkpoint its `latest` names, or
    without `latest` (a kill between the first checkpoint's rename and the pointer's) the newest
    step file. RUN/best and RUN/latest (or RUN/checkpoints/best, /latest) name those checkpoints."""
    path = Path(path)
    if path.name in (BEST, LATEST) and not path.exists() and (path.parent / CHECKPOINT_DIR).is_dir():
        path = path.parent / CHECKPOINT_DIR / path.name
    if path.name == BEST and path.parent.name == CHECKPOINT_DIR:
        record = best_record(path.parent.parent)
        if record is None:
            raise GanbenchError(f"{path}: the run keeps no best checkpoint (train with --eval-every to keep one)")
        path = path.parent / record["checkpoint"]
    elif path.name == LATEST and path.is_file():
        path = path.parent / read_pointer(path)
    if path.is_dir():
        folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
        pointer = folder / LATEST
        if pointer.is_file():
            path = folder / read_pointer(pointer)
        elif steps := sorted(folder.glob("step_*.safetensors")):
            path = steps[-1]
        else:
            raise GanbenchError(f"{path}: no checkpoint found (expected {pointer})")
    if not path.is_file():
        raise GanbenchError(f"{path}: checkpoint not found")
    return path


def read_pointer(pointer: Path) -> str:
    """The file name `latest` holds: a step file's name in its folder, nothing else."""
    try:
        name = pointer.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if not STEP_FILE.fullmatch(name):
        raise GanbenchError(f"{pointer}: damaged pointer (expected the name of a step_*.safetensors file)")
    return name


def read_metadata(path: Path) -> dict:
    """The checkpoint's metadata, each field's type and range checked (check_metadata)."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("ganbench")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanbenchError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    if raw is None:
        raise GanbenchError(f"{path}: not a ganbench checkpoint (no ganbench metadata)")
    meta = validation.json_object(validation.parse_json(raw, f"{path}: metadata"), path, "the metadata")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise GanbenchError(
            f"{path}: incompatible checkpoint format {validation.short(meta.get('format'))} "
            f"v{validation.short(meta.get('version'))} (this ganbench reads {FORMAT} v{VERSION})"
        )
    check_metadata(meta, path)
    return meta


def check_metadata(meta: dict, path) -> None:
    """Refuse metadata whose fields have the wrong type or range, or whose digest does not match."""
    if "meta_sha256" in meta:
        validation.string(meta["meta_sha256"], path, "meta_sha256", validation.SHA256)
        if metadata_digest(meta) != meta["meta_sha256"]:
            raise GanbenchError(f"{path}: corrupt checkpoint (its metadata does not match the sha256 recorded when "
                                "it was written)")
    validation.integer(meta.get("step"), path, "the step")
    validation.json_object(meta.get("config"), path, "the config")
    for field in ("arch", "spec_hash"):
        validation.string(meta.get(field), path, field)
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3):
        raise GanbenchError(f"{path}: image_shape must be a list [H, W, C], got {validation.short(shape)}")
    for size in shape:
        validation.integer(size, path, "each image_shape size", 1, 4096)
    opt_steps = validation.json_object(meta.get("opt_steps", {}), path, "opt_steps")
    for key, count in opt_steps.items():
        if key not in ("G", "D"):
            raise GanbenchError(f"{path}: opt_steps names an unknown network {validation.short(key)}")
        validation.integer(count, path, f"opt_steps.{key}")
    for field in ("layout", "tensors_sha256"):
        if field in meta:
            validation.string(meta[field], path, field, validation.SHA256 if field == "tensors_sha256" else None)
    validation.json_object(meta.get("writer", {}), path, "writer")
    check_loss_scales(meta.get("loss_scales", {}), path)
    check_lecam(meta.get("lecam", {"real": 0.0, "fake": 0.0, "updates": 0}), path)


def check_lecam(lecam, path) -> None:
    """{"real": finite, "fake": finite, "updates": int}, as runs with --lecam save them."""
    lecam = validation.json_object(lecam, path, "lecam")
    if set(lecam) != {"real", "fake", "updates"}:
        raise GanbenchError(f"{path}: lecam must hold real, fake and updates")
    for name in ("real", "fake"):
        validation.number(lecam[name], path, f"lecam.{name}")
    validation.integer(lecam["updates"], path, "lecam.updates")


def check_loss_scales(scales, path) -> None:
    """{"G"|"D": {"scale": positive finite, "tracker": int, "skipped": int}}, as fp16 runs save them."""
    for key, fields in validation.json_object(scales, path, "loss_scales").items():
        if key not in ("G", "D"):
            raise GanbenchError(f"{path}: loss_scales names an unknown network {validation.short(key)}")
        fields = validation.json_object(fields, path, f"loss_scales.{key}")
        if set(fields) != {"scale", "tracker", "skipped"}:
            raise GanbenchError(f"{path}: loss_scales.{key} must hold scale, tracker and skipped")
        if not validation.number(fields["scale"], path, f"loss_scales.{key}.scale") > 0:
            raise GanbenchError(f"{path}: loss_scales.{key}.scale must be positive")
        for name in ("tracker", "skipped"):
            validation.integer(fields[name], path, f"loss_scales.{key}.{name}")


def metadata_digest(meta: dict) -> str:
    """sha256 of the metadata's canonical JSON, less the digest itself."""
    fields = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def with_digest(meta: dict) -> dict:
    """The metadata with its meta_sha256 (re)computed: what save writes."""
    return {**meta, "meta_sha256": metadata_digest(meta)}


def spec_from(meta: dict, path, spec_for):
    """The spec the metadata describes; a config that does not validate is the file's fault."""
    try:
        spec = spec_for(meta)
    except GanbenchError as exc:
        raise GanbenchError(f"{path}: bad config in the metadata: {exc}") from None
    if meta["arch"] != spec.arch or meta["image_shape"] != list(spec.image_shape):
        raise GanbenchError(f"{path}: the metadata's arch and image_shape ({validation.short(meta['arch'])}, "
                            f"{meta['image_shape']}) are not those of its config ({spec.arch}, {list(spec.image_shape)})")
    return spec


class Loaded(NamedTuple):
    state: dict
    meta: dict
    path: Path   # the checkpoint file (a run directory resolves to its latest)
    spec: object  # the GANSpec its metadata describes, which every tensor was checked against


def load(path, spec_for=None) -> Loaded:
    """The checkpoint at `path`; `spec_for(meta)` builds the spec to check shapes against (default:
    the architecture its saved config describes)."""
    if spec_for is None:
        from ganbench.model import spec_from_metadata as spec_for
    path = resolve(path)
    meta = read_metadata(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanbenchError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    if "tensors_sha256" in meta and tensors_digest(tensors) != meta["tensors_sha256"]:
        raise GanbenchError(f"{path}: corrupt checkpoint (its tensors do not match the sha256 recorded when it was "
                            "written)")
    spec = spec_from(meta, path, spec_for)
    if meta.get("spec_hash") not in (spec_hash(spec), legacy_spec_hash(spec)):
        raise GanbenchError(f"{path}: incompatible checkpoint, written for another version of {meta.get('arch')!r}")
    try:
        state = unflatten_state(tensors, meta.get("opt_steps", {}), spec)
    except GanbenchError as exc:
        raise GanbenchError(f"{path}: {exc}") from None
    if "loss_scales" in meta:
        state["loss_scales"] = meta["loss_scales"]
    if "lecam" in meta:
        state["lecam"] = meta["lecam"]
    return Loaded(state, meta, path, spec)


def stored(run_dir) -> bool:
    """Whether the run directory holds any checkpoint file (valid or not)."""
    return any((Path(run_dir) / CHECKPOINT_DIR).glob("step_*.safetensors"))


def load_newest_valid(run_dir) -> tuple:
    """(Loaded, skipped) for resuming: the checkpoint `latest` names, else the newest step file that
    loads; skipped lists (path, reason) for each newer one that did not. Raises the newest
    checkpoint's error when none loads."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    candidates = sorted(folder.glob("step_*.safetensors"), reverse=True)
    pointer = folder / LATEST
    try:
        latest = resolve(run_dir)
        candidates = [latest] + [c for c in candidates if c != latest]
    except GanbenchError:
        pass  # a lost or damaged pointer: the step files themselves say which is newest
    skipped, first_error = [], None
    for path in candidates:
        try:
            return load(path), skipped
        except GanbenchError as exc:
            first_error = first_error or exc
            skipped.append((path, str(exc)))
    raise first_error or GanbenchError(f"{run_dir}: no checkpoint found (expected {pointer})")
