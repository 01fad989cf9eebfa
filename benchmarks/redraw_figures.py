"""Redraw the recorded benchmark figures (PNG and SVG) from their JSON, without re-running anything.

    python benchmarks/redraw_figures.py [--out DIR]       # needs ganbench[plot]; default: beside the JSON
"""

import argparse
import json
from pathlib import Path

from ganbench import figures

RESULTS = Path(__file__).parent / "results"
BENCH = {"bench-cpu-defaults-old-breakdown.json": "img_per_s-cpu-defaults-old-breakdown",
         "bench-cpu-defaults.json": "img_per_s-cpu-defaults",
         "bench-models-w025.json": "img_per_s-models-w025", "bench-precision.json": "img_per_s-precision",
         "bench-precision-bf16-cpu.json": "img_per_s-precision-bf16-cpu", "bench-gpu-h200.json": "img_per_s-gpu-h200",
         "bench-h200-host-cpu-bf16.json": "img_per_s-h200-host-cpu-bf16",
         "bench-precision-bf16-cpu-flow.json": "img_per_s-precision-bf16-cpu-flow",
         "bench-precision-bf16-cpu-blocks.json": "img_per_s-precision-bf16-cpu-blocks"}
QUALITY = {"quality.json": "quality"}  # one figure per preset: quality-<preset>


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go; default benchmarks/results")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for source, stem in BENCH.items():
        rows = json.loads((RESULTS / source).read_text())["rows"]
        for path in figures.save(figures.bench_figure(rows), out / f"{stem}.png", out / f"{stem}.svg"):
            print(f"wrote {path}")
    for source, stem in QUALITY.items():
        runs = [r for r in json.loads((RESULTS / source).read_text())["runs"] if "error" not in r]
        for preset in dict.fromkeys(r["preset"] for r in runs):
            figure = figures.quality_figure([r for r in runs if r["preset"] == preset], preset)
            for path in figures.save(figure, out / f"{stem}-{preset}.png", out / f"{stem}-{preset}.svg"):
                print(f"wrote {path}")


if __name__ == "__main__":
    main()
