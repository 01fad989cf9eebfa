#!/bin/bash
# The BigGAN acceptance runs (README "BigGAN on MNIST and Fashion-MNIST"): a reduced conditional
# BigGAN per dataset and backend, each process on its own core with one thread, so CPU time (GNU
# time, <run>.time) is compute time. Then class grids and `ganbench eval` (class accuracy needs
# the dataset's classifier: ganbench classifier train --dataset D).
# Run from the repository root: bash benchmarks/biggan_runs.sh DATASET [OUT_DIR] [STEPS] [LR_DECAY]
# The README's rows: STEPS 2300 with LR_DECAY none (both datasets), and with linear (Fashion-MNIST
# 2300, MNIST 2200); 17-20 CPU-minutes per run.
set -euo pipefail
dataset="$1"
out="${2:-runs/biggan}"
steps="${3:-2300}"
lr_decay="${4:-none}"
if [ -n "${GANBENCH_DATA:-}" ]; then export GANBENCH_DATA=$(realpath "$GANBENCH_DATA"); fi
export OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
mkdir -p "$out"
RECIPE="--model biggan --dataset $dataset --width 0.125 --loss hinge --n-dis 1 --batch-size 64 --lr 2e-4 --beta1 0.5
        --beta2 0.999 --adam-eps 1e-6 --ema-decay 0.99 --ema-start 250 --lr-decay $lr_decay --steps $steps
        --sample-every 400 --checkpoint-every 400 --keep-checkpoints 20 --no-progress"
core=0
for backend in torch tf; do
  run="$out/$dataset-$backend"
  /usr/bin/time -o "$run.time" -f "%U user %S sys %e wall" taskset -c $core \
    ganbench train $RECIPE --backend $backend --out "$run" > "$run.log" 2>&1 &
  core=$((core + 1))
done
wait
for backend in torch tf; do
  run="$out/$dataset-$backend"
  ganbench sample --checkpoint "$run" --classes --n 10 --out "$run/classes.png"
  ganbench eval --checkpoint "$run" --n 5000 --out "$run/eval.json"
  ganbench eval --checkpoint "$run" --n 5000 --no-ema --out "$run/eval-raw.json"
  ganbench eval --checkpoint "$run" --n 5000 --standing-stats 16 --metrics fid --out "$run/eval-standing.json"
done
