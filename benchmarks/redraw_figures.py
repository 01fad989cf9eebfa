"""Redraw the recorded benchmark figures (PNG and SVG) from their JSON, without re-running anything.

    python benchmarks/redraw_figures.py        # needs ganbench[plot]
"""

import json
from pathlib import Path

from ganbench import figures

RESULTS = Path(__file__).parent / "results"
BENCH = {"bench-cpu.json": "img_per_s", "bench-cpu-session5.json": "img_per_s-session5",
         "bench-models-w025.json": "img_per_s-models-w025", "bench-precision.json": "img_per_s-precision",
         "bench-precision-bf16-cpu.json": "img_per_s-precision-bf16-cpu", "bench-gpu-h200.json": "img_per_s-gpu-h200",
         "bench-h200-host-cpu-bf16.json": "img_per_s-h200-host-cpu-bf16",
         "bench-precision-bf16-cpu-flow.json": "img_per_s-precision-bf16-cpu-flow",
         "bench-precision-bf16-cpu-blocks.json": "img_per_s-precision-bf16-cpu-blocks"}
QUALITY = {"quality.json": "quality"}  # one figure per preset: quality-<preset>


def main() -> None:
    for source, stem in BENCH.items():
        rows = json.loads((RESULTS / source).read_text())["rows"]
        for path in figures.save(figures.bench_figure(rows), RESULTS / f"{stem}.png", RESULTS / f"{stem}.svg"):
            print(f"wrote {path}")
    for source, stem in QUALITY.items():
        runs = [r for r in json.loads((RESULTS / source).read_text())["runs"] if "error" not in r]
        for preset in dict.fromkeys(r["preset"] for r in runs):
            figure = figures.quality_figure([r for r in runs if r["preset"] == preset], preset)
            for path in figures.save(figure, RESULTS / f"{stem}-{preset}.png", RESULTS / f"{stem}-{preset}.svg"):
                print(f"wrote {path}")


if __name__ == "__main__":
    main()
