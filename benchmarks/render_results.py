"""Every recorded figure, and every table marked as generated in the pages, from the recorded
JSON (and the logs of the runs kept beside it), without re-running anything.

    python benchmarks/render_results.py            # redraw the figures, rewrite the generated tables
    python benchmarks/render_results.py --check    # write nothing; exit 1 naming what is stale

A generated table sits between `<!-- generated: NAME -->` and `<!-- end generated -->` in a page;
edit its JSON or its renderer here, never the table. --check fails when a table differs from what
its JSON renders, when a figure's JSON changed since the figure was drawn, and (when this
matplotlib is the one that drew them, as in CI) when a figure's bytes differ from a fresh drawing.
Needs ganbench[plot].
"""

import argparse
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

from eval_table import markdown_table as sample_quality_table
from quality_recipes import table as recipes_table

from ganbench import figures, plot
from ganbench.bench import report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MANIFEST = RESULTS / "figures.json"  # what each figure was drawn from, and by which matplotlib
PAGES = ("README.md", "docs/results.md", "benchmarks/README.md")
TABLE = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
BENCH_FIGURES = {  # figure stem: the bench JSON it draws
    "img_per_s-cpu-defaults": "bench-cpu-defaults.json",
    "img_per_s-cpu-defaults-old-breakdown": "bench-cpu-defaults-old-breakdown.json",
    "img_per_s-models-w025": "bench-models-w025.json", "img_per_s-precision": "bench-precision.json",
    "img_per_s-precision-bf16-cpu": "bench-precision-bf16-cpu.json", "img_per_s-gpu-h200": "bench-gpu-h200.json",
    "img_per_s-h200-host-cpu-bf16": "bench-h200-host-cpu-bf16.json",
    "img_per_s-precision-bf16-cpu-flow": "bench-precision-bf16-cpu-flow.json",
    "img_per_s-precision-bf16-cpu-blocks": "bench-precision-bf16-cpu-blocks.json",
}
# the `ganbench plot` figure of docs/results.md, from the two runs' logs kept in results/runs/
RUN_PLOTS = {"docs/images/plot-dcgan-mnist-torch-vs-tf.png": {
    "runs": ["runs/cmp-torch", "runs/cmp-tf"], "x": "seconds",
    "metrics": ["d_loss", "g_loss", "img_per_s", "eval/fid", "eval/kid", "eval/precision"]}}


def load(name: str):
    return json.loads((RESULTS / name).read_text())


# ---- tables -------------------------------------------------------------------------------------

def speed_summary() -> list:
    """img/s per preset and mode of `ganbench bench` with its defaults, and the faster backend."""
    result = load("bench-cpu-defaults.json")
    modes = [("torch", "eager"), ("torch", "compiled"), ("tf", "eager"), ("tf", "graph"), ("tf", "compiled")]
    names = {"torch": "PyTorch", "tf": "TensorFlow"}
    lines = ["| preset | batch | " + " | ".join(f"{names[b]} {m}" for b, m in modes) + " | faster, fastest modes |",
             "| --- " * (len(modes) + 3) + "|"]
    presets = dict.fromkeys(r["preset"] for r in result["rows"])
    for preset in presets:
        rows = {(r["backend"], r["mode"]): r for r in result["rows"] if r["preset"] == preset and "error" not in r}
        fastest = {b: max(r["img_per_s"] for (rb, _), r in rows.items() if rb == b) for b in names}
        winner, loser = sorted(names, key=lambda b: -fastest[b])
        cells = [f"{rows[k]['img_per_s']:.0f}" if k in rows else "-" for k in modes]
        batch = next(iter(rows.values()))["batch_size"]
        lines.append(f"| `{preset}` | {batch} | " + " | ".join(cells)
                     + f" | {names[winner]} {fastest[winner] / fastest[loser]:.2f}x |")
    return lines + ["", report.machine_line(result["machine"]) + " Raw: `benchmarks/results/bench-cpu-defaults.json`."]


def speed_full() -> list:
    result = load("bench-cpu-defaults.json")
    return [report.machine_line(result["machine"]), ""] + report.bench_table(result["rows"])


def quality_for_time() -> list:
    result = load("quality.json")
    curves = {r["backend"]: r["curve"] for r in result["runs"] if "error" not in r}
    lines = ["| seconds | " + " | ".join(f"{b} steps | {b} FD" for b in curves) + " |", "| --- " * (1 + 2 * len(curves)) + "|"]
    for points in zip(*curves.values()):
        lines.append(f"| {points[0]['seconds']:.0f} | " + " | ".join(f"{p['step']} | {p['fid']:.1f}" for p in points) + " |")
    return lines + ["", *report.quality_table(result["runs"]), "", report.machine_line(result["machine"])]


def sample_quality() -> list:
    return sample_quality_table(load("eval_table.json"))


RECIPES_JSON = "quality-recipes-mnist.json"  # benchmarks/quality_recipes.py's runs on MNIST


def quality_recipes() -> list:
    result = load(RECIPES_JSON)
    versions = ", ".join(f"{name} {version}" for name, version in result["versions"].items())
    return [recipes_table(result["summary"]), "", report.machine_line(result["machine"])
            + f" {versions}. Command: `{result['command']}` ({result['date']})."]


BIGGAN_NAMES = {"torch": "PyTorch", "tf": "TensorFlow", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def biggan_runs() -> list:
    """Per run of biggan_cpu.json: CPU time, class accuracy of G_ema (truncated, raw), FD, intra-class FD."""
    lines = ["| dataset | backend | seed | G steps | CPU time | class accuracy: G_ema | G_ema, truncation 0.5 | raw G "
             "| FD, G_ema (raw) | intra-class FD, G_ema (raw) |", "| --- " * 10 + "|"]
    for run in load("biggan_cpu.json")["runs"].values():
        c, ema, trunc, raw = run["config"], run["eval"]["metrics"], run["eval_t0.5"]["metrics"], run["eval_raw"]["metrics"]
        mark = lambda acc: f"**{acc:.1%}**" if acc >= 0.9 else f"{acc:.1%}"  # noqa: E731 (the 90% target in bold)
        lines.append(f"| {BIGGAN_NAMES[c['dataset']]} | {BIGGAN_NAMES[c['backend']]} | {c['seed']} | {run['g_steps']}"
                     f"{'*' if run['note'] else ''} | {run['cpu_s'] / 60:.1f} min | {mark(ema['class_accuracy'])} "
                     f"| {mark(trunc['class_accuracy'])} | {mark(raw['class_accuracy'])} | {ema['fid']:.1f} ({raw['fid']:.1f}) "
                     f"| {ema['intra_fid']:.1f} ({raw['intra_fid']:.1f}) |")
    return lines


def biggan_per_class() -> list:
    lines = ["| run | " + " | ".join(map(str, range(10))) + " |", "| --- " * 11 + "|"]
    for run in load("biggan_cpu.json")["runs"].values():
        c = run["config"]
        accuracy = run["eval"]["per_class"]["class_accuracy"]
        lines.append(f"| {BIGGAN_NAMES[c['dataset']]}, {BIGGAN_NAMES[c['backend']]}, seed {c['seed']} | "
                     + " | ".join(f"{a:.0%}" for a in accuracy) + " |")
    return lines


def transcribed(name: str):
    """A table recorded as columns and rows (the runs' own JSON was not kept; the file says so)."""
    def render() -> list:
        table = load(name)
        return ["| " + " | ".join(table["columns"]) + " |", "| --- " * len(table["columns"]) + "|",
                *("| " + " | ".join(row) + " |" for row in table["rows"])]
    return render


TABLES = {"speed-summary": speed_summary, "speed-full": speed_full, "quality-for-time": quality_for_time,
          "sample-quality": sample_quality, "quality-recipes": quality_recipes, "biggan-runs": biggan_runs, "biggan-per-class": biggan_per_class,
          "classifiers": transcribed("classifiers.json"), "ema-runs": transcribed("ema_runs.json"),
          "fashion-runs": transcribed("fashion_runs.json")}


def render_page(text: str, page: str) -> str:
    def fill(match):
        name = match["name"]
        if name not in TABLES:
            sys.exit(f"render_results: {page}: no renderer for the generated table {name!r}")
        return match[1] + "\n".join(TABLES[name]()) + "\n" + match[4]
    return TABLE.sub(fill, text)


# ---- figures ------------------------------------------------------------------------------------

def figure_jobs() -> dict:
    """{figure path relative to the root (PNG; an SVG beside each bench figure): (sources, draw(paths))}."""
    jobs = {}
    for stem, source in BENCH_FIGURES.items():
        draw = lambda out, source=source: figures.save(  # noqa: E731
            figures.bench_figure(load(source)["rows"]), out / "x.png", out / "x.svg")
        jobs[f"benchmarks/results/{stem}"] = ([f"benchmarks/results/{source}"], draw, (".png", ".svg"))
    runs = [r for r in load("quality.json")["runs"] if "error" not in r]
    for preset in dict.fromkeys(r["preset"] for r in runs):
        draw = lambda out, preset=preset: figures.save(  # noqa: E731
            figures.quality_figure([r for r in runs if r["preset"] == preset], preset), out / "x.png", out / "x.svg")
        jobs[f"benchmarks/results/quality-{preset}"] = (["benchmarks/results/quality.json"], draw, (".png", ".svg"))
    if (RESULTS / RECIPES_JSON).is_file():
        draw = lambda out: figures.save(figures.recipes_figure(  # noqa: E731
            load(RECIPES_JSON)["runs"], "MNIST, unconditional: sample quality per CPU-minute"), out / "x.png")
        jobs["docs/images/quality-recipes-mnist"] = ([f"benchmarks/results/{RECIPES_JSON}"], draw, (".png",))
    for target, spec in RUN_PLOTS.items():
        run_dirs = [RESULTS / r for r in spec["runs"]]
        draw = lambda out, dirs=run_dirs, spec=spec: plot.plot_runs(  # noqa: E731
            dirs, out / "x.png", x=spec["x"], metrics=spec["metrics"])
        sources = [str((d / name).relative_to(ROOT)) for d in run_dirs for name in ("log.jsonl", "config.json")]
        jobs[target.removesuffix(".png")] = (sources, draw, (".png",))
    return jobs


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def draw_all(jobs: dict, into: Path) -> dict:
    """Draw every figure into `into` (one folder per figure); {stem: {suffix: bytes}}."""
    drawn = {}
    for i, (stem, (_, draw, suffixes)) in enumerate(jobs.items()):
        folder = into / str(i)
        folder.mkdir()
        draw(folder)
        drawn[stem] = {s: (folder / f"x{s}").read_bytes() for s in suffixes}
    return drawn


def check(jobs: dict, drawn: dict | None) -> list:
    """What is stale: tables that differ from their JSON, figures whose sources or bytes changed."""
    stale = [page for page in PAGES if render_page((ROOT / page).read_text(), page) != (ROOT / page).read_text()]
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"figures": {}}
    for stem, (sources, _, suffixes) in jobs.items():
        recorded = manifest["figures"].get(stem, {})
        if recorded.get("sources") != {s: sha256(ROOT / s) for s in sources}:
            stale.append(f"{stem} (its JSON changed since it was drawn)")
        for suffix in suffixes if drawn else ():
            if drawn[stem][suffix] != (ROOT / f"{stem}{suffix}").read_bytes():
                stale.append(f"{stem}{suffix} (differs from a fresh drawing)")
    return stale


def write(jobs: dict, drawn: dict) -> None:
    for page in PAGES:
        path = ROOT / page
        path.write_text(render_page(path.read_text(), page))
    for stem, files in drawn.items():
        for suffix, data in files.items():
            (ROOT / f"{stem}{suffix}").write_bytes(data)
            print(f"wrote {stem}{suffix}")
    MANIFEST.write_text(json.dumps({
        "matplotlib": figures.matplotlib().__version__,
        "figures": {stem: {"sources": {s: sha256(ROOT / s) for s in sources}} for stem, (sources, _, _) in jobs.items()},
    }, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every stale table or figure")
    args = parser.parse_args()
    jobs = figure_jobs()
    recorded = json.loads(MANIFEST.read_text())["matplotlib"] if MANIFEST.is_file() else None
    same_matplotlib = recorded == figures.matplotlib().__version__
    with tempfile.TemporaryDirectory() as tmp:
        drawn = draw_all(jobs, Path(tmp)) if same_matplotlib or not args.check else None
    if not args.check:
        write(jobs, drawn)
        return
    if not same_matplotlib:
        print(f"figures' bytes not compared: matplotlib {figures.matplotlib().__version__} here, {recorded} drew them")
    stale = check(jobs, drawn)
    for item in stale:
        print(f"stale: {item} (run python benchmarks/render_results.py)")
    sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
