#!/usr/bin/env bash
# The GPU timings of issue 13 as one command for a lent GPU machine, where only PyTorch is
# installed: sngan_cifar10's training step in fp32, bf16 and fp16, PyTorch eager, torch.compile,
# and torch.compile with CUDA graphs (the cudagraphs mode), on format-exact CIFAR-10 files of
# random bytes (a step's cost does not depend on the pixels); where the machine's CPU has bf16
# hardware, also dcgan and dcgan_pytorch_example in fp32 and bf16 on that CPU. Runs from the repository root
# without installing ganbench (PYTHONPATH=src; the machine has numpy, safetensors, tqdm and
# pillow). Writes into OUT the machine's lines, the bench's JSON, report and log (bench/,
# bench_cpu_bf16/ for the CPU rows, bench_cudagraphs/ for the CUDA-graphs rows), the preset's
# convolutions timed alone (benchmarks/conv_layers.py). The device tool returns at most 8 files, so all of
# them are packed into OUT/results.tgz, re-packed after each part: a timeout loses only the parts
# after it.
# Extra arguments go to `ganbench bench` and override the defaults.
#
#   bash benchmarks/gpu_checks.sh OUT [bench arguments...]
#   device tool: run(command="bash benchmarks/gpu_checks.sh $OUT", timeout_s=540)
#   CPU smoke test: bash benchmarks/gpu_checks.sh /tmp/gpu --width 0.125 --precisions fp32 --modes eager --steps 1
set -euo pipefail
target=${1:?usage: bash benchmarks/gpu_checks.sh OUT [bench arguments...]}
shift
mkdir -p "$target"
out=$(mktemp -d)
pack() { tar czf "$target/results.tgz" -C "$out" .; }
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU: CPU')" | tee "$out/machine.txt"
{ grep -m1 'model name' /proc/cpuinfo; echo "cores: $(nproc)"; echo "bf16/fp16 flags: $(grep -m1 -ow -E 'avx512_bf16|amx_bf16|avx512_fp16|amx_fp16' /proc/cpuinfo | sort -u | tr '\n' ' ')"; } \
  | tee -a "$out/machine.txt"

data=$(mktemp -d)
trap 'pack; rm -rf "$data" "$out"' EXIT
python3 -c "import sys; from pathlib import Path; sys.path.insert(0, 'tests'); from binary_files import write_cifar; write_cifar(Path(sys.argv[1]), records_per_file=200)" "$data"
bench() {  # a failed configuration is a row of the report, not the end of the script
  python3 -m ganbench bench --presets sngan_cifar10 --backends torch --precisions fp32,bf16,fp16 --steps 20 --warmup 3 \
    --data-dir "$data" --no-download "$@" 2>&1 | tee "$out/$name.log" || echo "$name: some configurations failed"
  pack
}
# CUDA graphs (torch.compile's reduce-overhead mode) first, in a bench call of their own: the one
# GPU result still open (the spectral-norm vectors now keep their buffers; before, the mode
# recorded its graphs again on many steps), and a failure there cannot cost the other rows
name=bench_cudagraphs bench --modes cudagraphs --out "$out/bench_cudagraphs" "$@"
name=bench bench --modes eager,compiled --out "$out/bench" "$@"
# the CPU target, where this machine's CPU has bf16 hardware: PyTorch bf16 against fp32 on
# the CPU (CUDA hidden) for dcgan and dcgan_pytorch_example (MNIST, built into ganbench)
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
  CUDA_VISIBLE_DEVICES= name=bench_cpu_bf16 bench --presets dcgan,dcgan_pytorch_example --modes eager \
    --precisions fp32,bf16 --steps 10 --out "$out/bench_cpu_bf16" "$@"
fi
python3 benchmarks/conv_layers.py --preset sngan_cifar10 --backend torch --data-dir "$data" --out "$out/conv_layers.json" \
  2>&1 | tee "$out/conv_layers.txt" || echo "conv_layers failed"
pack
