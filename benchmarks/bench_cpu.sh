#!/usr/bin/env bash
# The CPU benchmark of benchmarks/README.md, from the repository root; nothing else should run.
# Needs the MNIST classifier for the quality run: ganbench classifier train --dataset mnist
set -euo pipefail
# datasets come from the data root as for every command: $GANBENCH_DATA, else ~/.cache/ganbench/data
out="${1:-/tmp/ganbench-bench}"
rm -rf "$out" && mkdir -p "$out"
python benchmarks/reference_loops.py --out "$out/reference_loops.json" | tee "$out/reference_loops.txt"
ganbench bench --out "$out/speed"                                            # defaults: ~8 minutes
ganbench bench --quality --presets dcgan --minutes 3 --out "$out/quality"   # torch eager vs tf graph: ~8 minutes
