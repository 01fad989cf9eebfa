"""Standard Inception metrics through torch-fidelity's TF-ported Inception-v3 (optional extra).

The weights come from --inception-weights PATH or the cache (<cache>/inception/<WEIGHTS_FILE>),
fetched there only when asked (`ganbench data download inception`, `eval --download`), and
their sha256 is checked before they are loaded: torch-fidelity unpickles the .pth file
(torch.load without weights_only), so only a file whose digest matches is ever handed to it.
The published file name carries the first 8 hex digits of its sha256 (torch.hub's convention);
the full digest is checked too where it is recorded (WEIGHTS_SHA256).
"""

import hashlib
from pathlib import Path

import numpy as np

from ganbench.errors import GanbenchError
from ganbench.metrics.classifier import cache_dir

EXTRACTOR = "inception-v3-compat"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256_PREFIX = "6726825d"
# torch-fidelity's release asset; it publishes no full digest, and none could be computed here
# (no network), so only the prefix is checked until a full one is recorded.
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
WEIGHTS_SHA256 = None
FEATURES, LOGITS = "2048", "logits_unbiased"


def default_weights_path() -> Path:
    return cache_dir() / "inception" / WEIGHTS_FILE


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digest_matches(digest: str, expected_prefix: str | None = None) -> bool:
    """The sha256 of the published weights: the file name's prefix, and the full digest where known."""
    if expected_prefix is not None:  # a stand-in extractor's own weights
        return digest.startswith(expected_prefix)
    return digest.startswith(WEIGHTS_SHA256_PREFIX) and WEIGHTS_SHA256 in (None, digest)


def checked_weights(path=None, expected_prefix: str | None = None) -> tuple[Path, str]:
    """(path, sha256) of verified Inception weights, or one clear error saying how to get them."""
    path = Path(path) if path else default_weights_path()
    if not path.is_file():
        raise GanbenchError(
            f"Inception weights not found at {path}: run `ganbench data download inception` (or eval "
            f"--download), or put torch-fidelity's {WEIGHTS_FILE} there, or pass --inception-weights PATH"
        )
    digest = sha256_file(path)
    if not digest_matches(digest, expected_prefix):
        raise GanbenchError(f"{path}: sha256 {digest[:16]}... does not match the Inception weights "
                            f"({expected_prefix or WEIGHTS_SHA256_PREFIX}...)")
    return path, digest


def download_weights(dest=None, base_url: str | None = None) -> Path:
    """The weights at `dest` (default: the cache), fetched from torch-fidelity's release (or the
    folder `base_url`) unless a verified copy is there; written atomically, sha256-checked."""
    from ganbench.data.download import fetch

    dest = Path(dest) if dest else default_weights_path()
    if dest.is_file() and digest_matches(sha256_file(dest)):
        return dest
    url = base_url.rstrip("/") + "/" + WEIGHTS_FILE if base_url else WEIGHTS_URL
    fetch(url, dest, lambda path, md5: digest_matches(sha256_file(path)))
    return dest


class TorchFidelityExtractor:
    """Any feature extractor in torch-fidelity's registry, behind the Classifier interface:
    run(uint8 NHWC) -> (features float64 [N, D], class probabilities float64 [N, C]).
    download: fetch the Inception weights to `weights` (default: the cache) when missing."""

    def __init__(self, name: str | None = None, weights=None, features: str = FEATURES, logits: str = LOGITS,
                 expected_prefix: str | None = None, download: bool = False):
        try:
            from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
        except ImportError:
            raise GanbenchError("Inception metrics need torch-fidelity: pip install 'ganbench[metrics]'") from None
        name = name or EXTRACTOR
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            raise GanbenchError(f"unknown feature extractor {name!r}")
        if download:  # after the import check: nothing is fetched for an extractor that cannot run
            weights = download_weights(weights)
        path, digest = checked_weights(weights, expected_prefix)
        self.names = (features, logits)
        self.net = FEATURE_EXTRACTORS_REGISTRY[name](
            name, list(self.names), feature_extractor_weights_path=str(path)
        ).eval()
        self.meta = {"arch": name, "weights_sha256": digest, "weights": str(path)}
        self.description = f"{name} (torch-fidelity), {features}-d features, {logits} for the score"
        self.resize = "bilinear to 299x299 inside the extractor (TF1-compatible)"

    @property
    def hash(self) -> str:
        return self.meta["weights_sha256"][:16]

    def run(self, images: np.ndarray, batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
        import torch

        feats, probs = [], []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch].transpose(0, 3, 1, 2)))
                if x.shape[1] == 1:
                    x = x.repeat(1, 3, 1, 1)  # grayscale -> RGB, as torch-fidelity does for 1-channel inputs
                f, logits = self.net(x)
                feats.append(f.double().numpy())
                probs.append(torch.softmax(logits.double(), dim=1).numpy())
        return np.concatenate(feats), np.concatenate(probs)
