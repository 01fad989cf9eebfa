#!/bin/bash
# The BigGAN acceptance runs (README "BigGAN on Fashion-MNIST and MNIST"): the biggan_cpu preset on one
# dataset in both backends, each process on its own core with one thread and a 19-minute wall-clock
# limit, so its CPU time (GNU time, <run>.time) stays within 20 minutes. Then class grids and
# `ganbench eval` of G_ema, G_ema with truncation 0.5, and the raw G (class accuracy needs the
# dataset's classifier: ganbench classifier train --dataset D).
# Run from the repository root: bash benchmarks/biggan_runs.sh DATASET [OUT_DIR] [SEED]
set -euo pipefail
dataset="$1"
out="${2:-runs/biggan}"
seed="${3:-0}"
if [ -n "${GANBENCH_DATA:-}" ]; then export GANBENCH_DATA=$(realpath "$GANBENCH_DATA"); fi
export OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
mkdir -p "$out"
core=0
for backend in torch tf; do
  run="$out/$dataset-$backend"
  /usr/bin/time -o "$run.time" -f "%U user %S sys %e wall" taskset -c $core \
    ganbench train --preset biggan_cpu --dataset "$dataset" --seed "$seed" --backend $backend --time-limit 19 \
    --checkpoint-every 250 --keep-checkpoints 40 --no-progress --out "$run" > "$run.log" 2>&1 &
  core=$((core + 1))
done
wait
for backend in torch tf; do
  run="$out/$dataset-$backend"
  ganbench sample --checkpoint "$run" --classes --n 10 --out "$run/classes.png"
  ganbench eval --checkpoint "$run" --n 5000 --out "$run/eval.json"
  ganbench eval --checkpoint "$run" --n 5000 --truncation 0.5 --out "$run/eval-t0.5.json"
  ganbench eval --checkpoint "$run" --n 5000 --no-ema --out "$run/eval-raw.json"
done
