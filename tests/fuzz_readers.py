"""Seeded mutation fuzzing of every reader of a user file, through the functions the commands
and the API call to read it.

    python tests/fuzz_readers.py --cases 50000 --seed 0 --out fuzz.json

Each case restores a valid corpus, damages or forges one file of one reader (byte flips in the
header or the payload, truncation at the format's boundaries, forged lengths, shapes, dtypes and
offsets, JSON values of every wrong type, zero bytes, a directory or a symlink loop in the file's
place), then reads it. The acceptable outcomes: a GanbenchError of one line, or a load. A load of
a *damaged* file of a format that records a digest (checkpoints, the classifier, the Inception
weights, MNIST's IDX files) must equal the valid file's; every load must keep the reader's
contract (dtype, shape, range). Each case runs under a time limit, and its peak resident memory
(VmHWM, reset per case) must stay under twice that of reading the valid file (at least
MEMORY_FLOOR, the allocator's granularity). Case k of seed s is reproducible alone (--case k).
Exit status 1 when any case fails; each failure prints its seed, case, reader and mutation.
"""

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from pathlib import Path

import numpy as np

CASE_SECONDS = 30
MEMORY_FLOOR = 8 * 2**20
HOSTILE_VALUES = [None, 0, -1, 1.5, 2**63, 10**30, -(10**30), 1e308, float("nan"), float("inf"), "", "x" * 10000,
                  "\u0000", [], [1, "a", None], {}, {"a": {"b": {"c": 1}}}, True, False]


class CaseTimeout(BaseException):
    """Raised by the alarm: a BaseException, so no reader's `except Exception` can swallow it."""


# ---- mutations: each returns (new bytes or a special action, description) ----

def flip(rng, data: bytes, start: int, end: int) -> tuple:
    data = bytearray(data)
    count = int(rng.integers(1, 9))
    positions = sorted(int(p) for p in rng.integers(start, max(end, start + 1), count) if p < len(data))
    for p in positions:
        data[p] ^= int(rng.integers(1, 256))
    return bytes(data), f"flip bytes {positions}"


def generic_mutation(rng, data: bytes, header: int, boundaries: list) -> tuple:
    kind = int(rng.integers(0, 9))
    if kind in (0, 1):
        return flip(rng, data, 0, min(header, len(data)))
    if kind == 2:
        return flip(rng, data, header, len(data))
    if kind == 3:
        cut = int(rng.choice(boundaries)) if rng.random() < 0.7 else int(rng.integers(0, max(len(data), 1)))
        return data[:cut], f"truncate at {cut}"
    if kind == 4:
        extra = rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
        return data + extra, f"append {len(extra)} bytes"
    if kind == 5:
        return b"", "zero bytes"
    if kind == 6:
        return "directory", "a directory in the file's place"
    if kind == 7:
        return "symlink-loop", "a symlink loop in the file's place"
    start = int(rng.integers(0, max(len(data), 1)))
    return data[:start] + data[start + int(rng.integers(1, 64)):], f"cut bytes from {start}"


def hostile_value(rng):
    if rng.random() < 0.15:
        depth = int(rng.integers(30, 5000))
        return Nested(depth)
    return HOSTILE_VALUES[int(rng.integers(len(HOSTILE_VALUES)))]


class Nested:
    """A JSON value nested `depth` lists deep, written as text (json.dumps would recurse)."""

    def __init__(self, depth: int):
        self.depth = depth


def dumps(value) -> str:
    """json.dumps that writes Nested placeholders as deep lists."""
    marker = "\u0001NESTED\u0001"
    found = []

    def replace(item):
        if isinstance(item, Nested):
            found.append(item.depth)
            return marker
        if isinstance(item, dict):
            return {k: replace(v) for k, v in item.items()}
        if isinstance(item, list):
            return [replace(v) for v in item]
        return item

    text = json.dumps(replace(value))
    for depth in found:
        text = text.replace(json.dumps(marker), "[" * depth + "]" * depth, 1)
    return text


def mutate_json_value(rng, document) -> tuple:
    """The document with one value (top level, or one level down) replaced by a hostile one, or
    the whole document replaced."""
    if not isinstance(document, dict) or rng.random() < 0.1:
        value = hostile_value(rng)
        return value, f"document -> {describe(value)}"
    key = list(document)[int(rng.integers(len(document)))]
    value = hostile_value(rng)
    if isinstance(document[key], dict) and document[key] and rng.random() < 0.6:
        inner = list(document[key])[int(rng.integers(len(document[key])))]
        return {**document, key: {**document[key], inner: value}}, f"{key}.{inner} -> {describe(value)}"
    return {**document, key: value}, f"{key} -> {describe(value)}"


def describe(value) -> str:
    if isinstance(value, Nested):
        return f"nested {value.depth} deep"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


# ---- safetensors ----

def safetensors_parts(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def safetensors_bytes(header: dict, payload: bytes) -> bytes:
    text = dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def safetensors_mutation(rng, data: bytes, resign=None) -> tuple:
    """Forged header length, tensor shape, dtype or offsets, or a hostile metadata value (the
    metadata re-signed by `resign`, as a forger would, so that the field checks are reached)."""
    header, payload = safetensors_parts(data)
    kind = int(rng.integers(0, 5))
    if kind == 0:
        length = int(rng.choice([0, 1, 2**63 - 1, 2**40, len(data), len(data) - 8, struct.unpack("<Q", data[:8])[0] + 1]))
        return struct.pack("<Q", length) + data[8:], f"header length -> {length}"
    names = [k for k in header if k != "__metadata__"]
    name = names[int(rng.integers(len(names)))]
    entry = dict(header[name])
    if kind == 1:
        entry["shape"] = [[2**40], [2**20, 2**20], [0], [], [-1], [2**64], ["a"]][int(rng.integers(7))]
        what = f"{name} shape -> {entry['shape']}"
    elif kind == 2:
        entry["dtype"] = ["F64", "F16", "BF16", "I64", "I8", "U8", "BOOL", "X"][int(rng.integers(8))]
        what = f"{name} dtype -> {entry['dtype']}"
    elif kind == 3:
        entry["data_offsets"] = [[0, 2**62], [5, 3], [0, 0], [len(payload), len(payload) + 4], [-1, 4]][int(rng.integers(5))]
        what = f"{name} offsets -> {entry['data_offsets']}"
    else:
        meta = header.get("__metadata__", {})
        key = list(meta)[int(rng.integers(len(meta)))] if meta else "ganbench"
        inner = json.loads(meta[key])
        mutated, what = mutate_json_value(rng, inner)
        if resign is not None and isinstance(mutated, dict):
            mutated = resign(mutated)
        return safetensors_bytes({**header, "__metadata__": {**meta, key: dumps(mutated)}}, payload), \
            f"metadata {what}" + (" (re-signed)" if resign else "")
    return safetensors_bytes({**header, name: entry}, payload), what


def safetensors_boundaries(data: bytes) -> list:
    (length,) = struct.unpack("<Q", data[:8])
    return [0, 1, 7, 8, 9, 8 + length // 2, 8 + length - 1, 8 + length, 8 + length + 1, len(data) // 2, len(data) - 1]


# ---- readers ----

class Reader:
    """One file of one format, read through ganbench's reader. Subclasses set `target` (the file
    mutated), `header` (its header's length) and `digest` (whether the format records a digest
    a damaged file must match), and define read() -> fingerprint and forge(rng)."""

    digest = False
    header = 64

    def names(self) -> tuple:
        """What a refusal must name: the file, or the folder it was found in."""
        return self.target.name, self.target.parent.name

    def boundaries(self, data: bytes) -> list:
        return [0, 1, self.header - 1, self.header, self.header + 1, len(data) // 2, len(data) - 1]

    def forge(self, rng, data: bytes) -> tuple:
        return generic_mutation(rng, data, self.header, self.boundaries(data))


class CheckpointReader(Reader):
    name = "checkpoint (.safetensors)"
    digest = True

    def __init__(self, run: Path):
        from ganbench import checkpoint

        self.run, self.target = run, checkpoint.resolve(run)

    def read(self):
        import ganbench

        generator = ganbench.load_generator(self.run, backend="torch")
        images = generator.sample(4)
        assert images.dtype == np.uint8 and images.shape[0] == 4 and images.ndim == 4
        return (hashlib.sha256(images.tobytes()).hexdigest(), generator.step, json.dumps(generator.config.to_dict()))

    def boundaries(self, data):
        return safetensors_boundaries(data)

    def forge(self, rng, data):
        from ganbench.checkpoint import with_digest

        def resign(meta):
            try:
                return with_digest(meta) if "meta_sha256" in meta else meta
            except TypeError:  # a Nested placeholder: the loader refuses the nesting before the digest
                return meta

        return safetensors_mutation(rng, data, resign)


class PointerReader(CheckpointReader):
    name = "checkpoint pointer (latest)"
    header = 5

    def __init__(self, run: Path):
        super().__init__(run)
        self.target = run / "checkpoints" / "latest"

    def boundaries(self, data):
        return Reader.boundaries(self, data)

    def forge(self, rng, data):
        name = ["../config.json", "/etc/passwd", "step_9999999.safetensors", "checkpoints", "", "\u00ff" * 3,
                "step_0000001.safetensors\x00"][int(rng.integers(7))]
        return name.encode("utf-8", "surrogatepass"), f"pointer -> {name!r}"


class ClassifierReader(Reader):
    name = "classifier (.safetensors)"
    digest = True

    def __init__(self, cache: Path):
        from ganbench.metrics.classifier import classifier_path

        self.target = classifier_path("mnist")

    def read(self):
        from ganbench.metrics.classifier import load_classifier

        classifier = load_classifier("mnist")
        state = classifier.net.state_dict()
        return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()

    def boundaries(self, data):
        return safetensors_boundaries(data)

    def forge(self, rng, data):
        return safetensors_mutation(rng, data)


class InceptionWeightsReader(Reader):
    name = "Inception weights (.pth)"
    digest = True

    def __init__(self, folder: Path):
        self.target = folder / "weights-inception-stand-in.pth"
        self.target.write_bytes(np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes())
        self.sha = hashlib.sha256(self.target.read_bytes()).hexdigest()

    def read(self):
        from ganbench.metrics.inception import checked_weights

        return checked_weights(self.target, self.sha)[1]


class JsonReader(Reader):
    """A JSON document: forged by replacing one value, or damaged as bytes."""

    def forge(self, rng, data):
        if rng.random() < 0.5:
            return generic_mutation(rng, data, len(data), self.boundaries(data))
        mutated, what = mutate_json_value(rng, json.loads(data))
        return dumps(mutated).encode(), what


class RunConfigReader(JsonReader):
    name = "run config.json"

    def __init__(self, run: Path):
        self.run, self.target = run, run / "config.json"

    def read(self):
        from ganbench.api import resolve

        config, _ = resolve(out=self.run, resume=True)
        return config.to_dict()


class BestRecordReader(JsonReader):
    name = "best-checkpoint record (best)"

    def __init__(self, run: Path):
        from ganbench import checkpoint

        self.run, self.target = run, run / "checkpoints" / "best"
        checkpoint.write_best(checkpoint.resolve(run), 2, "fid", 12.5)

    def read(self):
        import ganbench

        generator = ganbench.load_generator(self.run / "best", backend="torch")
        return hashlib.sha256(generator.sample(4).tobytes()).hexdigest(), generator.step


class PresetReader(JsonReader):
    name = "preset (.json)"

    def __init__(self, folder: Path):
        self.target = folder / "preset.json"
        self.target.write_text(json.dumps({"_about": "a recipe", "model": "sngan_cnn", "loss": "hinge", "n_dis": 5,
                                           "lr_g": 2e-4, "beta1": 0.0, "beta2": 0.9, "width": 0.5}))

    def read(self):
        from ganbench.api import resolve

        return resolve(str(self.target))[0].to_dict()


class LogReader(Reader):
    name = "log.jsonl"

    def __init__(self, run: Path):
        self.run, self.target = run, run / "log.jsonl"
        self.header = len(self.target.read_bytes().split(b"\n", 1)[0])

    def read(self):
        from ganbench.plot import read_run

        _, records = read_run(self.run)
        assert all(type(r["step"]) is int for r in records)
        return len(records)

    def forge(self, rng, data):
        lines = data.decode().splitlines()
        if rng.random() < 0.5 or not lines:
            return generic_mutation(rng, data, self.header, self.boundaries(data))
        k = int(rng.integers(len(lines)))
        mutated, what = mutate_json_value(rng, json.loads(lines[k]))
        lines[k] = dumps(mutated)
        return ("\n".join(lines) + "\n").encode(), f"line {k + 1}: {what}"


class NpzReader(Reader):
    name = "images (.npz)"

    def __init__(self, folder: Path):
        self.target = folder / "images.npz"
        images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
        np.savez_compressed(self.target, images=images)

    def read(self):
        from ganbench.metrics.evaluate import load_images

        images = load_images(self.target)
        assert images.dtype == np.uint8 and images.ndim == 4
        return hashlib.sha256(images.tobytes()).hexdigest()

    def forge(self, rng, data):
        if rng.random() < 0.5:
            return generic_mutation(rng, data, 128, self.boundaries(data))
        shape = [(2**40, 28, 28, 1), (2**20, 2**20, 1, 1), (16, 28, 28), (0, 28, 28, 1), (17, 28, 28, 1),
                 (16, 28, 28, 1, 1)][int(rng.integers(6))]
        dtype = ["|u1", "<f4", "|O", "<i8"][int(rng.integers(4))]
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (dtype, rng.random() < 0.2, shape)
        header = header.encode() + b" " * (-(len(header) + 11) % 64) + b"\n"
        member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16 * 28 * 28)
        out = tempfile.SpooledTemporaryFile()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("images.npy", member)
        out.seek(0)
        return out.read(), f"npy header dtype {dtype} shape {shape}"


def png_with_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, its CRC recomputed (a forged, not a damaged, file)."""
    ihdr = bytearray(data[12:29])  # type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


class ImageFolderReader(Reader):
    name = "image folder (PNG)"
    header = 33

    def __init__(self, folder: Path):
        from PIL import Image

        self.folder = folder / "images"
        self.folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(self.folder / f"{i}.png")
        self.target = self.folder / "2.png"

    def read(self):
        from ganbench.data import gan_data

        images, _ = gan_data("folder", 32, image_dir=str(self.folder))
        assert images.dtype == np.uint8 and images.shape[1:3] == (32, 32) and images.shape[3] in (1, 3)
        return hashlib.sha256(images.tobytes()).hexdigest()

    def forge(self, rng, data):
        if rng.random() < 0.6:
            return generic_mutation(rng, data, self.header, self.boundaries(data))
        width, height = [(2**31 - 1, 2**31 - 1), (2**20, 2**20), (0, 30), (4096, 4097), (80, 60), (1, 1)][int(rng.integers(6))]
        return png_with_size(data, width, height), f"IHDR size -> {width}x{height} (CRC fixed)"


class DatasetReader(Reader):
    """One file of a dataset under a private data root, read by ganbench.data.load."""

    def __init__(self, root: Path, dataset: str, split: str, target: Path, header: int, digest: bool):
        self.root, self.dataset, self.split, self.target = root, dataset, split, target
        self.header, self.digest = header, digest
        self.name = f"{dataset} {target.name}"

    def read(self):
        from ganbench import data

        images, labels = data.load(self.dataset, self.split, self.root)
        assert images.dtype == np.uint8 and images.ndim == 4 and len(images) == len(labels) > 0
        assert labels.dtype == np.int64 and labels.max() <= 9 and labels.min() >= -1
        return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()

    def forge(self, rng, data):
        if self.target.name.startswith("t10k") and not self.target.name.endswith(".gz") and rng.random() < 0.4:
            ndim = data[3]
            dims = [int(d) for d in rng.choice([0, 1, 28, 10000, 2**31, 2**32 - 1], ndim)]
            what = f"IDX dims -> {dims}"
            return data[:4] + struct.pack(f">{ndim}I", *dims) + data[4 + 4 * ndim:], what
        return generic_mutation(rng, data, self.header, self.boundaries(data))


def build_corpus(work: Path) -> list:
    """Every reader over a valid corpus under `work` (a short biggan run, a classifier, datasets)."""
    import gzip

    import ganbench
    from ganbench.data import catalog
    from ganbench.metrics.classifier import build_net, classifier_path

    run = work / "run"
    ganbench.train("biggan_cpu", run, dataset="mnist", width=0.0625, steps=2, batch_size=8, log_every=1,
                   sample_every=1000, checkpoint_every=1000, ema_decay=0.9, ema_start=0, progress=False)
    readers = [CheckpointReader(run), PointerReader(run), BestRecordReader(run), RunConfigReader(run), LogReader(run),
               PresetReader(work), NpzReader(work), ImageFolderReader(work), InceptionWeightsReader(work)]

    import torch
    from safetensors.torch import save

    from ganbench.checkpoint import tensors_digest
    from ganbench.metrics.classifier import ARCH_VERSION

    torch.manual_seed(0)
    tensors = {k: v.contiguous() for k, v in build_net(1).state_dict().items()}
    meta = {"dataset": "mnist", "arch": ARCH_VERSION, "test_accuracy": 0.99, "required_accuracy": 0.99,
            "tensors_sha256": tensors_digest({k: v.numpy() for k, v in tensors.items()})}
    classifier_path("mnist").parent.mkdir(parents=True)
    classifier_path("mnist").write_bytes(save(tensors, metadata={"ganbench": json.dumps(meta)}))
    readers.append(ClassifierReader(work))

    root = work / "data"
    mnist = root / "mnist"
    mnist.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (mnist / name).write_bytes(gzip.decompress((catalog.EMBEDDED_MNIST / f"{name}.gz").read_bytes()))
    shutil.copy(catalog.EMBEDDED_MNIST / "t10k-labels-idx1-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz")
    (mnist / "t10k-labels-idx1-ubyte").unlink()  # the labels as .gz, the images raw: both forms read
    readers += [DatasetReader(root, "mnist", "test", mnist / "t10k-images-idx3-ubyte", 16, True),
                DatasetReader(root, "mnist", "test", mnist / "t10k-labels-idx1-ubyte.gz", 10, True)]

    rng = np.random.default_rng(0)
    cifar = root / "cifar10" / "cifar-10-batches-bin"
    cifar.mkdir(parents=True)
    records = rng.integers(0, 256, (20, 1 + 3072), dtype=np.uint8)
    records[:, 0] = np.arange(20) % 10
    (cifar / "test_batch.bin").write_bytes(records.tobytes())
    stl = root / "stl10" / "stl10_binary"
    stl.mkdir(parents=True)
    (stl / "test_X.bin").write_bytes(rng.integers(0, 256, 3 * 3 * 96 * 96, dtype=np.uint8).tobytes())
    (stl / "test_y.bin").write_bytes(bytes([1, 5, 10]))
    readers += [DatasetReader(root, "cifar10", "test", cifar / "test_batch.bin", 1 + 3072, False),
                DatasetReader(root, "stl10", "test", stl / "test_X.bin", 3 * 96 * 96, False),
                DatasetReader(root, "stl10", "test", stl / "test_y.bin", 1, False)]
    return readers


# ---- running cases ----

def reset_peak_memory() -> int:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return memory_kb("VmRSS")


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def place(target: Path, content) -> None:
    """Put `content` (bytes, or a special action) where the target file is."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    if content == "directory":
        target.mkdir()
    elif content == "symlink-loop":
        os.symlink(target.name, target)
    else:
        target.write_bytes(content)


def on_alarm(signum, frame):
    raise CaseTimeout()


def measured_read(reader) -> tuple:
    """(outcome, value, seconds, peak memory growth in bytes) of one read."""
    from ganbench.errors import GanbenchError

    before = reset_peak_memory()
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        outcome, value = "loaded", reader.read()
    except GanbenchError as exc:
        outcome, value = "refused", str(exc)
    except CaseTimeout:
        outcome, value = "timeout", f"no answer in {CASE_SECONDS} s"
    except BaseException:  # noqa: BLE001 - every other exception is what the fuzzer hunts
        outcome, value = "traceback", traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    return outcome, value, seconds, max(0, memory_kb("VmHWM") - before) * 1024


def run_case(reader, valid: bytes, expected, budget: int, seed: int, case: int) -> dict:
    rng = np.random.default_rng([seed, case])
    if rng.random() < 0.5:
        content, what = generic_mutation(rng, valid, reader.header, reader.boundaries(valid))
        forged = False
    else:
        content, what = reader.forge(rng, valid)
        forged = "re-signed" in what or "CRC fixed" in what or "npy header" in what
    place(reader.target, content)
    try:
        outcome, value, seconds, memory = measured_read(reader)
    finally:
        place(reader.target, valid)
    failure = None
    if outcome in ("timeout", "traceback"):
        failure = value
    elif outcome == "refused" and "\n" in value:
        failure = f"a refusal of more than one line: {value!r}"
    elif outcome == "refused" and not any(name in value for name in reader.names()):
        failure = f"a refusal that names neither the file nor its folder: {value!r}"
    elif outcome == "loaded" and reader.digest and not forged and value != expected:
        failure = "a damaged file loaded as a different one"
    if memory > budget:
        failure = (failure or "") + f" peak memory grew {memory / 2**20:.0f} MiB, over {budget / 2**20:.0f} MiB"
    return {"case": case, "reader": reader.name, "mutation": what, "outcome": outcome, "seconds": seconds,
            "memory": memory, "failure": failure, "message": value if outcome == "refused" else None}


def fuzz(cases: int, seed: int, only_case: int | None = None) -> dict:
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["GANBENCH_CACHE"] = str(work / "cache")
        os.environ["GANBENCH_NO_DOWNLOAD"] = "1"
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            readers = build_corpus(work)
        signal.signal(signal.SIGALRM, on_alarm)
        baselines = {}
        for reader in readers:
            valid = reader.target.read_bytes()
            reads = [measured_read(reader) for _ in range(2)]
            assert all(r[0] == "loaded" for r in reads), f"{reader.name}: the valid file did not load: {reads[0][1]}"
            baselines[reader.name] = (valid, reads[0][1], 2 * max(MEMORY_FLOOR, max(r[3] for r in reads)))
        chosen = [only_case] if only_case is not None else range(cases)
        results = []
        for case in chosen:
            reader = readers[case % len(readers)]
            valid, expected, budget = baselines[reader.name]
            results.append(run_case(reader, valid, expected, budget, seed, case))
    return summarise(results, baselines, seed)


def summarise(results: list, baselines: dict, seed: int) -> dict:
    readers = {}
    for name, (_, _, budget) in baselines.items():
        mine = [r for r in results if r["reader"] == name]
        if not mine:
            continue
        readers[name] = {
            "cases": len(mine),
            "refused": sum(r["outcome"] == "refused" for r in mine),
            "loaded": sum(r["outcome"] == "loaded" for r in mine),
            "failures": sum(r["failure"] is not None for r in mine),
            "max_seconds": round(max(r["seconds"] for r in mine), 3),
            "max_memory_over_budget": round(max(r["memory"] for r in mine) / budget, 3),
            "refusals": sorted({r["message"].split(": ", 1)[-1][:90] for r in mine if r["message"]})[:8],
        }
    return {"seed": seed, "cases": len(results), "readers": readers,
            "failures": [r for r in results if r["failure"] is not None],
            "tracebacks": sum(r["outcome"] == "traceback" for r in results),
            "timeouts": sum(r["outcome"] == "timeout" for r in results),
            "max_seconds": round(max(r["seconds"] for r in results), 3),
            "case_seconds_limit": CASE_SECONDS}


def print_table(summary: dict) -> None:
    print(f"{'reader':<34} {'cases':>6} {'refused':>7} {'loaded':>6} {'failed':>6} {'max s':>6} {'mem/budget':>10}")
    for name, row in summary["readers"].items():
        print(f"{name:<34} {row['cases']:>6} {row['refused']:>7} {row['loaded']:>6} {row['failures']:>6} "
              f"{row['max_seconds']:>6.2f} {row['max_memory_over_budget']:>10.2f}")
    for failure in summary["failures"][:20]:
        print(f"FAILED seed {summary['seed']} case {failure['case']} ({failure['reader']}: {failure['mutation']}): "
              f"{failure['failure'].strip().splitlines()[-1] if failure['failure'].strip() else failure['failure']}")
        print(f"  reproduce: python tests/fuzz_readers.py --seed {summary['seed']} --case {failure['case']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2400, help="mutated files in all; default 2400")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutations; default 0")
    parser.add_argument("--case", type=int, help="run only this case (to reproduce a failure)")
    parser.add_argument("--out", type=Path, help="write the summary as JSON here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = fuzz(args.cases, args.seed, args.case)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    print_table(summary)
    print(f"{summary['cases']} cases, {summary['tracebacks']} tracebacks, {summary['timeouts']} timeouts, "
          f"{len(summary['failures'])} failures in {summary['wall_seconds']} s")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
