"""Run every benchmark configuration in its own process; write JSON and a Markdown report."""

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from ganbench import figures
from ganbench.bench.measure import machine
from ganbench.errors import GanbenchError
from ganbench.fileio import atomic_write, write_json
from ganbench.step_inputs import STEP_PARTS

COLUMNS = ("preset", "backend", "mode", "precision", "batch", "first step (s)", "median step (s)", "IQR (s)", "img/s",
           "GFLOP/s", "matmul GFLOP/s", "of matmul", "peak RSS (MB)")
PHASES = ("data", *STEP_PARTS)
DEFAULT_PRESETS = ("dcgan", "dcgan_pytorch_example", "dcgan_tf_tutorial")


def run_config(config: dict, timeout: float, module: str = "ganbench.bench.measure") -> dict:
    """`module`'s measurement of `config` in a fresh process; a failure becomes the row's error."""
    cmd = [sys.executable, "-m", module, json.dumps(config)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {**config, "error": lines[-1] if lines else f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_empty(out: Path) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GanbenchError(f"output directory {out} is not empty")
    return out


def combinations(presets, backends, modes) -> list:
    """(preset, backend, mode) in order; PyTorch has no graph mode short of compiling, TensorFlow no
    CUDA-graphs mode."""
    only = {"graph": "tf", "cudagraphs": "torch"}
    return [(p, b, m) for p, b, m in itertools.product(presets, backends, modes) if only.get(m, b) == b]


def run(presets, backends, modes, batch_sizes, steps: int, warmup: int, out: Path, data_dir=None,
        timeout: float = 900, width: float = 0.0, precisions=("fp32",)) -> dict:
    """batch_sizes: [0] keeps each preset's own batch size; width 0 each preset's own width."""
    out = check_empty(out)
    figures.matplotlib()  # refused before measuring, not after, when the figure cannot be drawn
    configs = [
        {"preset": p, "backend": b, "mode": mode, "batch_size": bs, "steps": steps, "warmup": warmup,
         "data_dir": str(data_dir) if data_dir else None, "width": width, "precision": precision}
        for p, b, mode in combinations(presets, backends, modes) for precision in precisions for bs in batch_sizes
    ]
    started = time.time()
    rows = [run_config(c, timeout) for c in tqdm(configs, desc="bench", unit="config")]
    result = {"machine": machine(), "started": started, "wall_s": time.time() - started, "rows": rows}
    write_json(out / "bench.json", result)
    atomic_write(out / "report.md", markdown(result).encode())
    figures.save(figures.bench_figure(result["rows"]), out / PLOT, (out / PLOT).with_suffix(".svg"))
    return result


PLOT = "img_per_s.png"  # and img_per_s.svg


def markdown(result: dict) -> str:
    lines = [
        "# ganbench bench",
        "",
        machine_line(result["machine"]),
        "",
        f"![img/s per configuration]({PLOT})",
        "",
    ] + bench_table(result["rows"])
    measured = [r for r in result["rows"] if "error" not in r]
    modes = {f"- {r['backend']} {r['mode']}: {r['mode_detail']}; {r['options']}; {r['threads']} threads": None
             for r in measured}
    steps = {f"- {r['preset']}: {r['model']} at {r['image_size']}x{r['image_size']}; {r['step']}": None for r in measured}
    lines += ["", "Modes:", *modes, "", "Steps:", *steps]
    lines += ["", "Breakdown: median seconds of each part of the training step, each run alone in the row's mode: "
              "drawing the step's batch and noise (numpy); the G forwards of the n_dis D updates' fakes (all but "
              "the last when the G update reuses it); the n_dis D updates (D on reals and fakes, the penalty, "
              "backward, Adam); the G update (G forward of its batch, D, backward through both, Adam, EMA). "
              "Run in order they are one step, so they sum to about the step. A simultaneous update (one forward "
              "serving both updates) has no parts that run apart: '-'.", "",
              "| preset | backend | mode | precision | batch | step | " + " | ".join(PHASES) + " | sum |",
              "|" + "---|" * (7 + len(PHASES))]
    for r in measured:
        lines.append(f"| {r['preset']} | {r['backend']} | {r['mode']} | {row_precision(r)} | {r['batch_size']} "
                     f"| {r['median_step_s']:.3f} | "
                     + " | ".join(f"{r['phases_s'][p]:.3f}" if p in r["phases_s"] else "-" for p in PHASES)
                     + (f" | {sum(r['phases_s'].values()):.3f} |" if set(r["phases_s"]) == set(PHASES) else " | - |"))
    lines += ["", *comparisons(result["rows"]), *speedups(result["rows"]), ""]
    lines.append(
        "Each row ran in a fresh process on the preset's data, from the same init, data order and noise in both "
        "backends: warm-up steps excluded (the first step, with any tracing or "
        "compilation, is shown apart), median and interquartile range of the timed steps, img/s = batch / median "
        "step. GFLOP/s counts convolutions and dense layers analytically (ganbench.archs.flops); 'of matmul' "
        "divides it by the same framework's square matmul rate (2048x2048 on a CPU, 8192x8192 on a GPU) in the "
        "row's precision, measured in the same process before and after the steps (the faster of the two). "
        "Peak RSS is the process maximum, framework included."
    )
    return "\n".join(lines) + "\n"


def bench_table(rows: list) -> list:
    """The markdown table of the bench's rows, one line per measured configuration."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['backend']} | {r['mode']} | {row_precision(r)} | {r['batch_size'] or 'preset'} "
                         f"| failed: {r['error']} |")
            continue
        lines.append(
            f"| {r['preset']} | {r['backend']} {r['framework']} | {r['mode']} | {row_precision(r)} | {r['batch_size']} "
            f"| {r['first_step_s']:.2f} "
            f"| {r['median_step_s']:.3f} | {r['iqr_step_s']:.3f} | {r['img_per_s']:.0f} | {r['achieved_gflops']:.1f} "
            f"| {r['matmul_gflops']:.1f} | {r['fraction_of_matmul_rate']:.0%} | {r['peak_rss_mb']:.0f} |"
        )
    return lines


def row_precision(row: dict) -> str:
    return row.get("precision", "fp32")  # rows recorded before precisions existed ran in float32


def machine_line(m: dict) -> str:
    line = f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, {m['os']}."
    if "low_precision_flags" not in m:
        return line
    flags = ", ".join(m["low_precision_flags"])
    return line + (f" Low-precision hardware: {flags}." if flags else
                   " No bf16/fp16 hardware (no avx512_bf16, amx_bf16, avx512_fp16 or amx_fp16 flag): bf16 and fp16 "
                   "are emulated here and run slower than fp32.")


def speedups(rows: list) -> list:
    """Each low-precision row's img/s against the fp32 row of the same (preset, backend, mode, batch)."""
    fp32 = {(r["preset"], r["backend"], r["mode"], r["batch_size"]): r for r in rows
            if "error" not in r and row_precision(r) == "fp32"}
    out = []
    for r in rows:
        base = fp32.get((r["preset"], r["backend"], r["mode"], r["batch_size"]))
        if "error" not in r and row_precision(r) != "fp32" and base:
            out.append(f"- {r['preset']} {r['backend']} {r['mode']}, batch {r['batch_size']}: {row_precision(r)} "
                       f"{r['img_per_s'] / base['img_per_s']:.2f}x the fp32 img/s.")
    return out


def comparisons(rows: list) -> list:
    """Per (preset, batch, precision): each backend's fastest mode, and the ratio between the two."""
    best = {}
    for r in rows:
        if "error" in r:
            continue
        key = (r["preset"], r["batch_size"], row_precision(r))
        current = best.setdefault(key, {}).get(r["backend"])
        if current is None or r["img_per_s"] > current["img_per_s"]:
            best[key][r["backend"]] = r
    out = []
    for (preset, batch, prec), by_backend in best.items():
        if len(by_backend) == 2:
            fast, slow = sorted(by_backend.values(), key=lambda r: -r["img_per_s"])
            out.append(f"- {preset}, batch {batch}, {prec}: {fast['backend']} ({fast['mode']}) is "
                       f"{fast['img_per_s'] / slow['img_per_s']:.2f}x faster than {slow['backend']} ({slow['mode']}).")
    return out


def run_quality(presets, backends, modes, minutes: float, evals: int, eval_n: int, out: Path, data_dir=None,
                timeout: float = 3600) -> dict:
    """Each (preset, backend, mode) trains for `minutes` in a fresh process, scored `evals` times."""
    out = check_empty(out)
    figures.matplotlib()
    configs = [{"preset": p, "backend": b, "mode": m, "seconds": minutes * 60, "evals": evals, "eval_n": eval_n,
                "data_dir": str(data_dir) if data_dir else None} for p, b, m in combinations(presets, backends, modes)]
    started = time.time()
    runs = [run_config(c, timeout, "ganbench.bench.quality") for c in tqdm(configs, desc="quality", unit="run")]
    result = {"machine": machine(), "started": started, "wall_s": time.time() - started, "runs": runs}
    write_json(out / "quality.json", result)
    for preset in presets:
        figure = figures.quality_figure([r for r in runs if r["preset"] == preset and "error" not in r], preset)
        figures.save(figure, out / f"quality-{preset}.png", out / f"quality-{preset}.svg")
    atomic_write(out / "quality.md", quality_markdown(result, presets).encode())
    return result


def quality_table(runs: list) -> list:
    """The markdown table of the quality runs: steps in the budget, first and final FD."""
    lines = ["| preset | backend | mode | batch | budget (s) | steps | first FD | final FD |", "|" + "---|" * 8]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['backend']} | {r['mode']} | failed: {r['error']} |")
            continue
        lines.append(f"| {r['preset']} | {r['backend']} | {r['mode']} | {r['batch_size']} | {r['budget_s']:.0f} | "
                     f"{r['steps']} | {r['curve'][0]['fid']:.1f} | {r['curve'][-1]['fid']:.1f} |")
    return lines


def quality_markdown(result: dict, presets) -> str:
    lines = ["# ganbench bench --quality", "", machine_line(result["machine"]), ""]
    for preset in presets:
        lines += [f"![{preset}](quality-{preset}.png)", ""]
    lines += quality_table(result["runs"])
    lines += ["", "Each run trained in a fresh process from the same init, data order and noise. The clock counts "
              "input drawing and training steps (first-step tracing or compilation included) and stops while "
              "samples are scored: the classifier Fréchet distance of the run's eval_n samples against the test "
              "split (`ganbench eval`'s fid)."]
    return "\n".join(lines) + "\n"
