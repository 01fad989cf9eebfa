"""Sample-quality statistics on feature vectors and class probabilities (numpy only).

Features are float64 [N, D]; probabilities are [N, C] rows summing to 1.
"""

import numpy as np


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of float64 features."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017, the FID formula).

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are real
    and non-negative for covariance matrices (tiny negative or imaginary parts are rounding)."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    eig = np.linalg.eigvals(np.asarray(sigma1, np.float64) @ np.asarray(sigma2, np.float64))
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets. Returns (mean, std)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    values = np.empty(subsets)
    for i in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        values[i] = (
            (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
            - 2 * k_xy.mean()
        )
    return float(values.mean()), float(values.std())


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def knn_radii(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row."""
    radii = np.empty(len(x))
    for start in range(0, len(x), chunk):
        d = _sq_dists(x[start : start + chunk], x)
        radii[start : start + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def _inside_any_ball(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 2048) -> np.ndarray:
    inside = np.empty(len(points), bool)
    for start in range(0, len(points), chunk):
        d = _sq_dists(points[start : start + chunk], centres)
        inside[start : start + chunk] = (d <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): the share of fake samples inside
    the real manifold (union of k-NN balls of real samples), and of real inside the fake one."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = _inside_any_ball(fake, real, knn_radii(real, k)).mean()
    recall = _inside_any_ball(real, fake, knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def classifier_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over `splits` equal parts (the Inception Score formula,
    Salimans et al. 2016, with any classifier). Returns (mean, std) over the splits."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_coverage(probs: np.ndarray) -> tuple[float, float]:
    """(fraction of classes predicted for at least half their fair share N / (2C),
    KL divergence from uniform of the predicted-class histogram)."""
    probs = np.asarray(probs)
    n, c = probs.shape
    counts = np.bincount(probs.argmax(axis=1), minlength=c)
    covered = float((counts >= n / (2 * c)).mean())
    hist = counts / n
    nonzero = hist > 0
    kl = float((hist[nonzero] * np.log(hist[nonzero] * c)).sum())
    return covered, kl
