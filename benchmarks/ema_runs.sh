#!/bin/bash
# EMA measured (README "EMA of the generator"): the default dcgan on MNIST with an EMA of G, one run
# per backend, each on its own core with one thread; then the classifier FD of G_ema and of the
# raw G at every kept checkpoint (needs: ganbench classifier train --dataset mnist).
# Run from the repository root: bash benchmarks/ema_runs.sh [OUT_DIR]
set -euo pipefail
out="${1:-runs/ema}"
if [ -n "${GANBENCH_DATA:-}" ]; then export GANBENCH_DATA=$(realpath "$GANBENCH_DATA"); fi
export OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
mkdir -p "$out"
RECIPE="--model dcgan --dataset mnist --ema-decay 0.99 --ema-start 100 --steps 1000 --checkpoint-every 250
        --keep-checkpoints 4 --sample-every 250 --no-progress"
core=0
for backend in torch tf; do
  /usr/bin/time -o "$out/$backend.time" -f "%U user %S sys %e wall" taskset -c $core \
    ganbench train $RECIPE --backend $backend --out "$out/$backend" > "$out/$backend.log" 2>&1 &
  core=$((core + 1))
done
wait
for backend in torch tf; do
  for checkpoint in "$out/$backend"/checkpoints/step_*.safetensors; do
    step=$(basename "$checkpoint" .safetensors)
    ganbench eval --checkpoint "$checkpoint" --n 5000 --metrics fid --out "$out/$backend-$step-ema.json" > /dev/null
    ganbench eval --checkpoint "$checkpoint" --n 5000 --metrics fid --no-ema --out "$out/$backend-$step-raw.json" > /dev/null
  done
done
