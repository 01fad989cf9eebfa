"""Evaluation under one protocol for every backend: uint8 images -> classifier features -> metrics.

Generated images reach the classifier through ganbench.images.to_uint8, the same quantisation
for both backends, so a backend can never be measured on different pixels than it would save.
"""

import math
from pathlib import Path

import numpy as np

from ganbench import data
from ganbench.errors import GanbenchError
from ganbench.fileio import atomic_write, write_json
from ganbench.images import to_uint8
from ganbench.metrics import stats
from ganbench.metrics.classifier import Classifier, cache_dir, data_hash, load_classifier

METRICS = ("fid", "kid", "score", "pr", "coverage")
KID_SUBSETS, KID_SUBSET_SIZE, PR_K = 100, 1000, 3


def parse_metrics(text: str) -> tuple:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise GanbenchError(f"unknown metric {unknown[0] if unknown else text!r} (choose from {', '.join(METRICS)})")
    return names


FEATURES = ("classifier", "inception")


def feature_extractor(kind: str, dataset: str, inception_weights=None, download: bool = False):
    """The feature space: the dataset's classifier (offline), or torch-fidelity's Inception-v3
    (weights from `inception_weights` or the cache; download: fetched there first when missing)."""
    if kind == "inception":
        from ganbench.metrics.inception import TorchFidelityExtractor

        return TorchFidelityExtractor(weights=inception_weights, download=download)
    if kind != "classifier":
        raise GanbenchError(f"unknown feature space {kind!r} (choose from {', '.join(FEATURES)})")
    if download:
        raise GanbenchError("download fetches the Inception weights: it goes with the inception features")
    data.get_dataset(dataset)
    return load_classifier(dataset)


def check_images(images: np.ndarray, dataset: str) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        kind = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise GanbenchError(f"images must be uint8 [N, H, W, C], got {kind}")
    channels = data.get_dataset(dataset).image_shape[-1]
    if images.shape[-1] != channels:
        raise GanbenchError(f"{dataset} images have {channels} channel(s), got {images.shape[-1]}")
    return images


def reference(dataset: str, split: str, classifier: Classifier, data_dir=None) -> dict:
    """Features, probabilities and labels of a real split, cached by data hash and extractor hash."""
    from safetensors.numpy import load_file, save

    images, labels = data.load(dataset, split, data_dir)
    key = f"{dataset}-{split}-{data_hash(images, labels)}-{classifier.hash}"
    path = cache_dir() / "reference" / f"{key}.safetensors"
    if path.is_file():
        stored = load_file(str(path))
    else:  # stored as float32; the first run returns the same stored values as later ones
        features, probs = classifier.run(images)
        stored = {"features": features.astype(np.float32), "probs": probs.astype(np.float32)}
        atomic_write(path, save(stored))
    return {"features": stored["features"].astype(np.float64), "probs": stored["probs"].astype(np.float64),
            "labels": labels, "key": key}


def compute(real_features, real_probs, fake_features, fake_probs, metrics=METRICS) -> dict:
    """Each requested metric on one pair of feature sets."""
    out = {}
    if "fid" in metrics:
        out["fid"] = stats.frechet_distance(*stats.mean_cov(real_features), *stats.mean_cov(fake_features))
    if "kid" in metrics:
        out["kid"], out["kid_std"] = stats.kid(real_features, fake_features, KID_SUBSETS, KID_SUBSET_SIZE)
    if "score" in metrics:
        out["score"], out["score_std"] = stats.classifier_score(fake_probs)
    if "pr" in metrics:
        out["precision"], out["recall"] = stats.precision_recall(real_features, fake_features, PR_K)
    if "coverage" in metrics:
        out["coverage"], out["class_kl"] = stats.class_coverage(fake_probs)
    return out


def class_metrics(ref: dict, features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> tuple:
    """A conditional generator's metrics: class accuracy (the share of samples that the classifier
    assigns to the class they were generated for) and intra-class FD (the mean over classes of the
    FD between that class's samples and its real images); and both per class (lists, class order)."""
    classes = np.unique(labels)
    correct = probs.argmax(axis=1) == labels
    intra = [stats.frechet_distance(*stats.mean_cov(ref["features"][ref["labels"] == k]),
                                    *stats.mean_cov(features[labels == k])) for k in classes]
    per_class = {"class": classes.tolist(), "class_accuracy": [float(correct[labels == k].mean()) for k in classes],
                 "intra_fid": [float(fd) for fd in intra]}
    return {"class_accuracy": float(correct.mean()), "intra_fid": float(np.mean(intra))}, per_class


def evaluate(images: np.ndarray, dataset: str, n: int, ref_split: str = "test", metrics=METRICS,
             data_dir=None, classifier=None, labels: np.ndarray | None = None) -> dict:
    """Metrics of the first `n` uint8 images against the real split, with the full protocol.
    `classifier` is the feature extractor: the dataset's classifier by default, or any object with
    run(), hash, meta, description and resize (e.g. inception.TorchFidelityExtractor). `labels`:
    the classes the images were generated for (a conditional generator), which adds class_metrics."""
    classifier = classifier or load_classifier(dataset)
    images = check_images(images, dataset)
    if len(images) < n:
        raise GanbenchError(f"need {n} images for --n {n}, got {len(images)}")
    ref = reference(dataset, ref_split, classifier, data_dir)
    features, probs = classifier.run(images[:n])
    results, per_class = compute(ref["features"], ref["probs"], features, probs, metrics), {}
    if labels is not None:
        conditional, per_class = class_metrics(ref, features, probs, np.asarray(labels)[:n])
        results.update(conditional)
    return {
        "metrics": results,
        **({"per_class": per_class} if per_class else {}),
        "protocol": {
            "n": n,
            "reference": f"{dataset} {ref_split} ({len(ref['features'])} images)",
            "features": classifier.description,
            "extractor_sha256": classifier.meta["weights_sha256"],
            "classifier_test_accuracy": classifier.meta.get("test_accuracy"),
            "resize": classifier.resize,
            "kid": f"{KID_SUBSETS} subsets of {KID_SUBSET_SIZE}, cubic polynomial kernel",
            "pr": f"k={PR_K}",
            "score_splits": 10,
            **({"labels": "classes 0, 1, ..., K-1 in turn (balanced); intra_fid per class against that class's "
                          "real images"} if labels is not None else {}),
        },
    }


def generated_images(gan, spec, n: int, seed: int, truncation: float = 0.0) -> tuple:
    """(n uint8 samples, their class labels or None): the same noise, classes and quantisation as
    `ganbench sample`."""
    from ganbench.sampling import sample_images, sample_labels

    labels = sample_labels(spec, n)
    return to_uint8(sample_images(gan, spec, n, seed, labels=labels, truncation=truncation)), labels


def load_images(path) -> np.ndarray:
    """uint8 NHWC from an .npz (key 'images', or its only array) or a folder of PNG/JPEG files."""
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        images = read_npz_images(path)
        return images[..., None] if images.ndim == 3 else images
    if path.is_dir():
        from ganbench.data.folder import EXTENSIONS, open_image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not files:
            raise GanbenchError(f"{path}: no .png or .jpg images")
        images = [np.asarray(open_image(f)) for f in files]
        images = [a[..., None] if a.ndim == 2 else a for a in images]
        if len({a.shape for a in images}) != 1 or {a.dtype for a in images} != {np.dtype(np.uint8)}:
            raise GanbenchError(f"{path}: images have different sizes or are not 8-bit")
        return np.stack(images)
    raise GanbenchError(f"{path}: not an .npz file or a folder of images")


NPZ_MAX_RATIO = 1100  # deflate expands at most ~1032x: a member claiming more is forged


def read_npz_images(path: Path) -> np.ndarray:
    """The uint8 [N, H, W(, C)] array of an .npz, its header (dtype, shape) checked against the
    member's size before its data is read: a forged shape is refused without allocating it."""
    import tokenize
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
            key = "images" if "images" in members else (next(iter(members)) if len(members) == 1 else None)
            if key is None:
                raise GanbenchError(f"{path}: expected an 'images' array, found {', '.join(members) or 'none'}")
            info = members[key]
            if info.file_size > NPZ_MAX_RATIO * info.compress_size + 4096:
                raise GanbenchError(f"{path}: member {key} claims {info.file_size} bytes from {info.compress_size}")
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran_order, dtype = header(f, max_header_size=10000)
                if dtype != np.uint8 or len(shape) not in (3, 4):
                    raise GanbenchError(f"{path}: images must be uint8 [N, H, W, C] (or [N, H, W]), got {dtype} {shape}")
                count = math.prod(shape)
                if f.tell() + count != info.file_size:
                    raise GanbenchError(f"{path}: {key} claims shape {shape}, but holds {info.file_size - f.tell()} bytes")
                flat = np.empty(count, np.uint8)  # the size checked above: the data read straight in
                if f.readinto(memoryview(flat)) != count:
                    raise GanbenchError(f"{path}: {key} ends before its {count} bytes")
    except GanbenchError:
        raise
    except (zipfile.BadZipFile, zlib.error, tokenize.TokenError, SyntaxError, ValueError, OSError, EOFError,
            NotImplementedError) as exc:  # what numpy's header parser and zipfile raise on damaged bytes
        raise GanbenchError(f"{path}: unreadable .npz ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    images = flat.reshape(shape[::-1] if fortran_order else shape)
    return np.ascontiguousarray(images.T if fortran_order else images)


def write_result(result: dict, path) -> None:
    write_json(path, result)
