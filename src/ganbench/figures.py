"""Figures drawn with matplotlib (the `plot` extra): the bench's img/s bars, the quality curves,
and the run comparison curves of `ganbench plot`. PNG or SVG by the file's suffix, written
atomically. matplotlib is imported here only, on first use, never by `import ganbench`; the
figures are matplotlib.figure.Figure objects, not pyplot's, so a notebook's backend and open
figures are left alone."""

import io
import math
from pathlib import Path

import numpy as np

from ganbench.errors import GanbenchError
from ganbench.fileio import atomic_write

FORMATS = (".png", ".svg")
DPI = 100
BACKEND_COLOURS = {"torch": "#ee4c2c", "tf": "#ff8f00"}  # the frameworks' own brand colours


def matplotlib():
    """The matplotlib module, or one line saying how to install it."""
    try:
        import matplotlib
        import matplotlib.figure
        import matplotlib.patches
    except ImportError:
        raise GanbenchError("figures need matplotlib: pip install 'ganbench[plot]'") from None
    return matplotlib


def figure(**kwargs):
    """A constrained-layout Figure outside pyplot (nothing to close, no global state)."""
    return matplotlib().figure.Figure(layout="constrained", **kwargs)


def check_format(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise GanbenchError(f"{path}: a figure is written as {' or '.join(FORMATS)}")
    return path


def save(fig, *paths) -> list:
    """Write `fig` to each path (PNG at DPI, or SVG, by the suffix) atomically."""
    paths = [check_format(path) for path in paths]
    rendered = []
    for path in paths:
        buffer = io.BytesIO()
        kind = path.suffix[1:].lower()
        # no date, fixed element ids: the same figure is the same file (recorded figures diff cleanly)
        with matplotlib().rc_context({"svg.hashsalt": "ganbench"}):
            fig.savefig(buffer, format=kind, dpi=DPI, metadata={"Date": None} if kind == "svg" else None)
        rendered.append(buffer.getvalue())
    return [atomic_write(path, data) for path, data in zip(paths, rendered)]


def bench_label(row: dict) -> str:
    return f"{row['preset']} {row['backend']} {row['mode']} {row.get('precision', 'fp32')} b{row['batch_size']}"


def bench_figure(rows: list):
    """Horizontal bars of training img/s per measured configuration, coloured by backend; the
    error bar spans img/s x median / (median +- IQR / 2): the spread of the timed steps."""
    measured = [r for r in rows if "error" not in r]
    fig = figure(figsize=(8, 1.2 + 0.32 * max(len(measured), 1)))
    ax = fig.subplots()
    y = np.arange(len(measured))[::-1]
    rates = np.array([r["img_per_s"] for r in measured])
    median = np.array([r["median_step_s"] for r in measured])
    half_iqr = np.array([r["iqr_step_s"] / 2 for r in measured])
    slow, fast = rates * median / (median + half_iqr), rates * median / np.maximum(median - half_iqr, 1e-9)
    ax.barh(y, rates, xerr=np.stack([rates - slow, fast - rates]) if measured else None, capsize=3,
            color=[BACKEND_COLOURS.get(r["backend"], "grey") for r in measured], ecolor="black")
    ax.set_yticks(y, [bench_label(r) for r in measured], fontsize=8)
    for yi, rate, end in zip(y, rates, fast):
        ax.annotate(f"{rate:.0f}", (end, yi), xytext=(4, -3), textcoords="offset points", fontsize=7)
    ax.set_xlabel("training images per second (median step; bars: IQR)")
    ax.set_title("ganbench bench: training throughput (higher is better)", fontsize=10)
    handles = [matplotlib().patches.Rectangle((0, 0), 1, 1, color=c) for c in BACKEND_COLOURS.values()]
    # outside the axes: inside, it could hide the end of a bar
    fig.legend(handles, ["PyTorch", "TensorFlow"], loc="outside upper right", ncol=2, fontsize=8)
    ax.margins(x=0.12)
    return fig


def quality_figure(runs: list, title: str):
    """Classifier FD against training seconds, one line per (backend, mode) run."""
    fig = figure(figsize=(6.4, 4))
    ax = fig.subplots()
    for r in runs:
        seconds = [p["seconds"] for p in r["curve"]]
        ax.plot(seconds, [p["fid"] for p in r["curve"]], marker="o", markersize=3,
                color=BACKEND_COLOURS.get(r["backend"]), linestyle="-" if r["mode"] != "compiled" else "--",
                label=f"{r['backend']} {r['mode']} ({r['steps']} steps)")
    ax.set_xlabel("training seconds")
    ax.set_ylabel("classifier FD (lower is better)")
    ax.set_title(f"{title}: sample quality against training time", fontsize=10)
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=8)
    return fig


def recipes_figure(runs: list, title: str):
    """Classifier FD against CPU-minutes of training, a line per run of benchmarks/quality_recipes.py
    (colour: backend; line style: recipe; the log scale shows both the start and the end)."""
    fig = figure(figsize=(6.4, 4))
    ax = fig.subplots()
    styles = dict(zip(dict.fromkeys(r["recipe"] for r in runs), ("-", "--", ":", "-.")))
    for r in runs:
        ax.plot([p["train_minutes"] for p in r["curve"]], [p["metrics"]["fid"] for p in r["curve"]], marker="o",
                markersize=3, color=BACKEND_COLOURS.get(r["backend"]), linestyle=styles[r["recipe"]],
                label=f"{r['recipe']}, {r['backend']}, seed {r['seed']}")
    ax.set_yscale("log")
    ax.set_xlabel("CPU-minutes of training (one core, one thread)")
    ax.set_ylabel("classifier FD, 5000 samples (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if runs:
        ax.legend(fontsize=7)
    return fig


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start."""
    out, average = np.empty(len(values)), 0.0
    for i, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        out[i] = average / (1 - weight ** (i + 1)) if weight < 1 else values[0]
    return out


def curves_figure(runs: list, metrics: list, x: str, smoothing: float, smoothed: set, spreads: dict):
    """One panel per metric, one line per run. runs: [(label, {metric: (xs, ys)})]; metrics in
    `smoothed` are drawn smoothed over their faint raw values; spreads {metric: its std metric}
    shade +-1 std around the line."""
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = figure(figsize=(4.2 * cols, 3.1 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    colours = matplotlib().rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.flat, metrics):
        for i, (label, series) in enumerate(runs):
            if metric not in series:
                continue
            xs, ys = series[metric]
            colour = colours[i % len(colours)]
            if metric in smoothed and len(ys) > 1:
                ax.plot(xs, ys, color=colour, alpha=0.25, linewidth=0.8)
                ax.plot(xs, smooth(ys, smoothing), color=colour, label=label)
            else:
                ax.plot(xs, ys, color=colour, label=label, marker="o" if len(ys) < 30 else None, markersize=3)
            if spreads.get(metric) in series and len(series[spreads[metric]][1]) == len(ys):
                std = series[spreads[metric]][1]
                ax.fill_between(xs, ys - std, ys + std, color=colour, alpha=0.2, linewidth=0)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("training seconds" if x == "seconds" else "step")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    legend = {}  # label -> line, over every panel (a run may lack the first metric)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside upper center", ncol=min(len(runs), 4), fontsize=9)
    return fig
