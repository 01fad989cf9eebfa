"""`ganbench plot`: the logged curves of several runs in one figure, one line per run."""

from pathlib import Path

import numpy as np

from ganbench import figures
from ganbench.errors import GanbenchError
from ganbench.training.logger import LOG_FILE, read_log
from ganbench.training.loop import CONFIG_FILE, saved_config

BOOKKEEPING = ("step", "time", "elapsed_s")
X_AXES = {"steps": "step", "seconds": "elapsed_s"}
UNSMOOTHED = ("img_per_s",)  # besides every eval/<metric>: losses are smoothed, these are drawn as logged


def read_run(run_dir) -> tuple[dict, list]:
    """(config dict, log records) of a run directory; one clear error when it is not a run, or
    when its log or config.json is damaged."""
    run_dir = Path(run_dir)
    log = run_dir / LOG_FILE
    if not log.is_file():
        raise GanbenchError(f"{run_dir}: not a run directory (no {LOG_FILE})")
    records = read_log(log)
    if not records:
        raise GanbenchError(f"{log}: no log records yet")
    config_file = run_dir / CONFIG_FILE
    config = saved_config(run_dir).to_dict() if config_file.exists() else {}
    return config, records


def run_label(config: dict) -> str:
    """backend, mode and precision of the run (fp32 where the config names none)."""
    return " ".join(str(config.get(k, "?")) for k in ("backend", "mode")) + f" {config.get('precision', 'fp32')}"


def labels(run_dirs: list, configs: list) -> list:
    """Each run's label; runs that would share one are told apart by their directory."""
    plain = [run_label(c) for c in configs]
    return [f"{label} ({Path(d).name})" if plain.count(label) > 1 else label for label, d in zip(plain, run_dirs)]


def series(records: list, x: str) -> dict:
    """{metric: (xs, ys)} over the records that log the metric, in step order."""
    out = {}
    for metric in dict.fromkeys(k for r in records for k in r if k not in BOOKKEEPING):
        points = sorted((r["step"], r[x], r[metric]) for r in records if isinstance(r.get(metric), (int, float)))
        if points:
            out[metric] = (np.array([p[1] for p in points], float), np.array([p[2] for p in points], float))
    return out


def plot_runs(run_dirs: list, out, x: str = "steps", metrics: list | None = None, smoothing: float = 0.6) -> Path:
    """A figure of every metric (or `metrics`) the runs log against steps or training seconds."""
    if x not in X_AXES:
        raise GanbenchError(f"--x must be one of {', '.join(X_AXES)}, got {x!r}")
    if not 0 <= smoothing < 1:
        raise GanbenchError(f"--smoothing must be in [0, 1), got {smoothing}")
    out = figures.check_format(out)
    figures.matplotlib()  # refused before reading anything when matplotlib is missing
    loaded = [read_run(d) for d in run_dirs]
    curves = [series(records, X_AXES[x]) for _, records in loaded]
    logged = list(dict.fromkeys(m for c in curves for m in c))
    for metric in metrics or []:
        if metric not in logged:
            raise GanbenchError(f"unknown metric {metric!r}: the runs log {', '.join(logged)}")
    # a metric's "<metric>_std" (KID's and the score's spread over subsets) is its band, not a panel
    chosen = metrics or [m for m in logged if not (m.endswith("_std") and m[:-4] in logged)]
    spreads = {m: f"{m}_std" for m in chosen if f"{m}_std" in logged}
    smoothed = {m for m in chosen if not m.startswith("eval/") and m not in UNSMOOTHED}
    runs = list(zip(labels(run_dirs, [c for c, _ in loaded]), curves))
    return figures.save(figures.curves_figure(runs, chosen, x, smoothing, smoothed, spreads), out)[0]
