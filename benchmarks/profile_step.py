"""Where a training step spends its time: the framework profiler's per-op totals over a few steps
of a preset, in one backend and mode (torch.profiler; TensorFlow's profiler, its trace read back
from the XSpace file it writes). Prints the top ops and writes JSON.

    GANBENCH_DATA=../shared/data python benchmarks/profile_step.py --preset dcgan_tf_tutorial --backend tf

Times are the ops' own (self) time summed over the profiled steps and divided by their number:
with several threads the ops of one step may overlap, so the column sums to more than the step.
"""

import argparse
import collections
import json
import re
import statistics
import tempfile
from pathlib import Path

from ganbench.bench.measure import bench_config, machine, prepared_steps, threads, timed
from ganbench.precision import PRECISIONS

OP_EVENT = re.compile(r"^[^:\s]+:[A-Za-z_]\w*$")  # not the executor's own "ExecutorState::Process" events
XLA_RUN = "CpuExecutable::ExecuteAsyncOnStream"


def torch_profile(run_steps) -> dict:
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run_steps()
    return {event.key: event.self_cpu_time_total / 1e6 for event in prof.key_averages()}


def tf_profile(run_steps) -> dict:
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        run_steps()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if OP_EVENT.match(name):  # "scope/op_name:OpType": a TensorFlow op's kernel
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e12
                elif name == XLA_RUN:  # a jit-compiled function's run: XLA's fused kernels
                    totals["XLA cluster"] += event.duration_ps / 1e12
    return dict(totals)


def profile(preset: str, backend: str, mode: str, steps: int, warmup: int, data_dir=None, precision="fp32") -> dict:
    gan, inputs = prepared_steps(bench_config(preset, backend, mode, precision=precision), data_dir, warmup + steps)
    for step_inputs in inputs[:warmup]:
        gan.train_step(step_inputs)
    step_times = []

    def run_steps():
        for step_inputs in inputs[warmup:]:
            step_times.append(timed(lambda: gan.train_step(step_inputs)))

    ops = (torch_profile if backend == "torch" else tf_profile)(run_steps)
    per_step = sorted(((op, seconds / steps) for op, seconds in ops.items()), key=lambda item: -item[1])
    return {"preset": preset, "backend": backend, "mode": gan.mode, "precision": precision, "threads": threads(backend),
            "profiled_steps": steps, "median_step_s": statistics.median(step_times),
            "op_self_s_per_step": dict(per_step), "machine": machine()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan_tf_tutorial")
    parser.add_argument("--backend", choices=("torch", "tf"), default="tf")
    parser.add_argument("--mode", default="default")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path("profile_step.json"))
    args = parser.parse_args()
    result = profile(args.preset, args.backend, args.mode, args.steps, args.warmup, args.data_dir, args.precision)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{args.preset}, {args.backend} {result['mode']} {args.precision}, {result['threads']} threads: "
          f"median step {result['median_step_s']:.3f} s under the profiler ({args.steps} steps)")
    total = sum(result["op_self_s_per_step"].values())
    print(f"{'op':40} {'ms/step':>8} {'share':>6}")
    for op, seconds in list(result["op_self_s_per_step"].items())[:args.top]:
        print(f"{op[:40]:40} {seconds * 1e3:8.1f} {seconds / total:6.1%}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
