"""The best checkpoint (--best-metric with --eval-every) as a user gets it: training keeps
checkpoints/best at the evaluated step with the best value in the log (a checkpoint of that step
written when none was due), across a resume; sample and eval take RUN/best in a fresh process."""

import json
import subprocess
import sys

import pytest

from ganbench import checkpoint
from ganbench.config import TrainConfig
from ganbench.training import loop

RUN = dict(steps=4, batch_size=16, eval_every=1, eval_n=300, sample_every=100, checkpoint_every=2,
           keep_checkpoints=1, log_every=1)


def evaluations(run, metric="fid") -> dict:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r[f"eval/{metric}"] for r in records if f"eval/{metric}" in r}


def check_best(run, metric="fid", lower=True):
    values = evaluations(run, metric)
    step = (min if lower else max)(values, key=lambda s: (values[s] if lower else -values[s], s))
    record = checkpoint.best_record(run)
    assert record == {"checkpoint": f"step_{step:07d}.safetensors", "step": step, "metric": metric,
                      "value": values[step]}
    assert checkpoint.load(run / "best").meta["step"] == step
    return record


@pytest.fixture(scope="module")
def best_run(quick_classifier, tmp_path_factory, data_dir):
    """Four steps evaluated at each, then resumed to six."""
    run = tmp_path_factory.mktemp("best") / "run"
    loop.train(TrainConfig(**RUN), run, data_dir=data_dir, progress=False)
    first = check_best(run)
    loop.train(TrainConfig(**{**RUN, "steps": 6}), run, resume=True, data_dir=data_dir, progress=False)
    return run, first


def test_best_is_the_logged_best_across_a_resume(best_run):
    run, first = best_run
    record = check_best(run)
    assert sorted(evaluations(run)) == [1, 2, 3, 4, 5, 6]
    assert record["value"] <= first["value"]
    assert json.loads((run / "config.json").read_text())["best_metric"] == "fid"  # what the default resolved to
    files = {p.name for p in (run / "checkpoints").glob("step_*")}
    assert {"step_0000006.safetensors", record["checkpoint"]} <= files


def test_another_metric_on_resume_starts_a_new_record(best_run, data_dir, tmp_path):
    run, _ = best_run
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    loop.train(TrainConfig(**{**RUN, "steps": 7, "best_metric": "coverage"}), copy, resume=True, data_dir=data_dir,
               progress=False)
    record = checkpoint.best_record(copy)
    assert (record["metric"], record["step"]) == ("coverage", 7)  # the only evaluation with that metric


def ganbench(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ganbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_sample_and_eval_take_the_best_by_name(best_run, tmp_path, data_dir):
    run, _ = best_run
    done = ganbench("sample", "--checkpoint", run / "best", "--n", "4", "--out", tmp_path / "best.png")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "best.png").is_file()
    done = ganbench("eval", "--checkpoint", run / "checkpoints" / "best", "--n", "300", "--metrics", "fid",
                    "--data-dir", data_dir, "--out", tmp_path / "eval.json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["fid"] > 0


def test_a_run_without_evaluation_has_no_best(tmp_path, data_dir):
    run = tmp_path / "plain"
    loop.train(TrainConfig(steps=1, batch_size=8, sample_every=100, log_every=1), run, data_dir=data_dir,
               progress=False)
    done = ganbench("sample", "--checkpoint", run / "best", "--n", "4", "--out", tmp_path / "x.png")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"ganbench: error: {run / 'checkpoints' / 'best'}: the run keeps no best checkpoint (train with --eval-every "
        "to keep one)"]
    assert not (tmp_path / "x.png").exists()
