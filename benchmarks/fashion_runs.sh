#!/bin/bash
# The #5 acceptance runs (README "SNGAN-CNN and WGAN-GP on Fashion-MNIST"): SNGAN-CNN and the
# WGAN-GP ResNet on 32x32 Fashion-MNIST in both backends, then `ganbench eval`. Each backend runs
# on its own core with one thread, so CPU time (GNU time, <run>.time) is compute time.
# Run from the repository root: bash benchmarks/fashion_runs.sh
set -e
if [ -n "${GANBENCH_DATA:-}" ]; then export GANBENCH_DATA=$(realpath "$GANBENCH_DATA"); fi  # we cd below
export TF_CPP_MIN_LOG_LEVEL=2 OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
mkdir -p runs/fashion && cd runs/fashion
CNN="--model sngan_cnn --loss hinge --width 0.25 --lr 2e-4 --beta1 0.5 --beta2 0.999 --n-dis 1 --batch-size 64 --batch-size-g 64 --steps 2000 --sample-every 500 --checkpoint-every 500"
WGAN5="--preset wgan_gp_cifar10 --width 0.125 --batch-size 32 --batch-size-g 64 --steps 1000 --sample-every 250 --checkpoint-every 250"
WGAN2="--model wgan_gp_resnet --loss wgan-gp --width 0.125 --batch-size 32 --batch-size-g 64 --n-dis 2 --lr 2e-4 --beta1 0.5 --beta2 0.9 --steps 2000 --sample-every 500 --checkpoint-every 500"
one() {  # core backend mode name options...
  core=$1; backend=$2; mode=$3; name=$4; shift 4
  /usr/bin/time -v -o $name.time taskset -c $core python -m ganbench train "$@" --dataset fashion-mnist \
    --backend $backend --mode $mode --out $name --no-progress > $name.out 2>&1
  taskset -c $core python -m ganbench eval --checkpoint $name --n 5000 --out $name/eval.json > $name.eval 2>&1
}
( one 0 torch eager sngan-cnn-fashion-torch $CNN; one 0 torch eager wgan-gp-fashion-torch $WGAN5
  one 0 torch eager wgan-gp2-fashion-torch $WGAN2 ) &
( one 1 tf compiled sngan-cnn-fashion-tf $CNN; one 1 tf compiled wgan-gp-fashion-tf $WGAN5
  one 1 tf compiled wgan-gp2-fashion-tf $WGAN2 ) &
wait
