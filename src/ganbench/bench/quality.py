"""Quality for the time: one backend trains a preset for a wall-clock budget and scores its
samples at evenly spaced moments. `python -m ganbench.bench.quality JSON` runs one backend in
this process; `ganbench bench --quality` runs each in a fresh one and plots them together.

The clock counts what training costs a user: drawing the inputs and the training steps, the
first step's tracing or compilation included. Evaluation stops the clock. The metric is the
evaluation's classifier Fréchet distance (`fid`, lower is better) of `eval_n` samples from fixed
noise against the test split, so both backends are scored by the same extractor.
"""

import json
import sys
import time

from ganbench.bench.measure import bench_config, bench_gan
from ganbench.training import loop
from ganbench.training.inputs import draw_step_inputs

METRIC = "eval/fid"


def train_for(preset: str, backend: str, mode: str, seconds: float, evals: int, eval_n: int, data_dir=None) -> dict:
    config, spec, stream = loop.prepare_data(bench_config(preset, backend, mode).replace(eval_n=eval_n), data_dir)
    evaluator = loop.PeriodicEval(config, spec, data_dir)  # fails now if the classifier is missing
    gan = bench_gan(spec, config)
    marks = [seconds * (i + 1) / evals for i in range(evals)]
    curve = [{"seconds": 0.0, "step": 0, "fid": evaluator(gan)[METRIC]}]
    clock, step = 0.0, 0
    while marks:
        start = time.perf_counter()
        gan.train_step(draw_step_inputs(config, stream, spec, step))
        clock += time.perf_counter() - start
        step += 1
        if clock >= marks[0]:
            marks.pop(0)
            curve.append({"seconds": clock, "step": step, "fid": evaluator(gan)[METRIC]})
    return {"preset": preset, "backend": backend, "mode": gan.mode, "batch_size": config.batch_size,
            "budget_s": seconds, "steps": step, "eval_n": eval_n, "curve": curve}


if __name__ == "__main__":
    print(json.dumps(train_for(**json.loads(sys.argv[1]))))
