"""Images per CPU-minute (issue 30's targets): each recipe trained for a CPU budget on one core
with one thread, for each backend and seed, then scored as a user scores it: `ganbench eval --n N
--metrics fid` of its last checkpoint (the classifier FD against the 10,000 test images; class
accuracy and intra-class FD too for a class-conditional model), and, with --curve, of every
kept checkpoint, for FD against CPU-minutes.

    python benchmarks/quality_recipes.py --recipes dcgan sngan_cpu --backends torch tf --seeds 0 1 2 \\
        --minutes 10 --parallel 2 --out benchmarks/results/quality-recipes.json

A recipe is a list of `ganbench train` options (RECIPES). Each run is `ganbench train --time-limit`
pinned to one core (`taskset`, OMP/TF thread counts 1), so that its wall clock is its CPU time;
the CPU time recorded is the training process's user + system time (os.wait4), start-up and
tracing included. `--parallel K` runs K trainings at once on cores 0..K-1 (K at most the cores).
Prints a Markdown table and writes JSON with the machine, the versions, every run's config and
metrics (`--runs-dir` keeps the run directories).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

from ganbench.bench.measure import machine

# the options of each recipe (`ganbench train`), besides the dataset, backend, seed and budget; the
# screening runs that chose sngan_cpu, with their options: results/quality-recipes-screening.json
RECIPES = {
    "dcgan": [],  # the seed article's DCGAN as `ganbench train` runs it by default
    "sngan_cpu": ["--preset", "sngan_cpu"],  # SNGAN's standard CNN sized for a CPU (its _about says how)
}
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                 "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
LONG = 10**7  # steps: the time limit ends every run


def ganbench_command(*args) -> list:
    return [sys.executable, "-m", "ganbench", *map(str, args)]


def pinned(command: list, core: int | None) -> list:
    return ["taskset", "-c", str(core), *command] if core is not None and shutil.which("taskset") else command


def run_timed(command: list, env: dict, log: Path) -> tuple:
    """(exit code, user + system CPU seconds) of one process, its output in `log`."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def train_and_score(job: dict, core: int | None) -> dict:
    """One run: train for the budget, then `ganbench eval` of the last (and with curve, every kept)
    checkpoint."""
    run, env = Path(job["run_dir"]), {**os.environ, **SINGLE_THREAD}
    options = [*RECIPES[job["recipe"]], "--dataset", job["dataset"], "--backend", job["backend"], "--seed",
               job["seed"], "--steps", job["steps"] or LONG, "--out", run, "--no-progress", "--sample-every", 10**6,
               "--log-every", 50, "--checkpoint-every", job["checkpoint_every"], "--keep-checkpoints", 10**6,
               *(["--data-dir", job["data_dir"]] if job["data_dir"] else [])]
    if not job["steps"]:
        options += ["--time-limit", job["minutes"]]
    started = time.time()
    code, cpu_s = run_timed(pinned(ganbench_command("train", *options), core), env, run.parent / f"{run.name}.log")
    if code != 0:
        raise SystemExit(f"training {run.name} failed with exit code {code}: see {run.parent / (run.name + '.log')}")
    checkpoints = sorted((run / "checkpoints").glob("step_*.safetensors"))
    scored = checkpoints if job["curve"] else checkpoints[-1:]
    points = [score(path, job, env, core) for path in scored]
    return {**{k: job[k] for k in ("recipe", "dataset", "backend", "seed")}, "options": RECIPES[job["recipe"]],
            "cpu_minutes": cpu_s / 60, "wall_minutes": (time.time() - started) / 60, "steps": points[-1]["step"],
            "final": points[-1]["metrics"], "curve": points if job["curve"] else [],
            "config": json.loads((run / "config.json").read_text())}


def score(checkpoint: Path, job: dict, env: dict, core: int | None) -> dict:
    """`ganbench eval` of one checkpoint, and where on the run's clock it was written."""
    out = checkpoint.with_suffix(".eval.json")
    command = ganbench_command("eval", "--checkpoint", checkpoint, "--n", job["n"], "--metrics", "fid", "--out", out,
                               *(["--data-dir", job["data_dir"]] if job["data_dir"] else []))
    code, _ = run_timed(pinned(command, core), env, out.with_suffix(".log"))
    if code != 0:
        raise SystemExit(f"eval of {checkpoint} failed with exit code {code}: see {out.with_suffix('.log')}")
    step = int(checkpoint.stem.split("_")[1])
    records = [json.loads(line) for line in (checkpoint.parents[1] / "log.jsonl").read_text().splitlines()]
    elapsed = max((r["elapsed_s"] for r in records if r.get("step", 0) <= step and "elapsed_s" in r), default=0.0)
    return {"step": step, "train_minutes": elapsed / 60, "metrics": json.loads(out.read_text())["metrics"]}


def summary_rows(runs: list) -> list:
    """Per recipe and backend: the median and worst FD over seeds (and class accuracy)."""
    rows = []
    for key in dict.fromkeys((r["recipe"], r["dataset"], r["backend"]) for r in runs):
        mine = [r for r in runs if (r["recipe"], r["dataset"], r["backend"]) == key]
        fds = [r["final"]["fid"] for r in mine]
        row = {"recipe": key[0], "dataset": key[1], "backend": key[2], "seeds": [r["seed"] for r in mine],
               "fid": fds, "median_fid": median(fds), "worst_fid": max(fds),
               "cpu_minutes": [r["cpu_minutes"] for r in mine], "steps": [r["steps"] for r in mine]}
        if all("class_accuracy" in r["final"] for r in mine):
            row["class_accuracy"] = [r["final"]["class_accuracy"] for r in mine]
            row["intra_fid"] = [r["final"]["intra_fid"] for r in mine]
        rows.append(row)
    return rows


def table(rows: list) -> str:
    lines = ["| recipe | dataset | backend | seeds | G steps | CPU min | FD per seed | median FD | worst FD |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['dataset']} | {r['backend']} | {', '.join(map(str, r['seeds']))} | "
                     f"{', '.join(map(str, r['steps']))} | {', '.join(f'{m:.1f}' for m in r['cpu_minutes'])} | "
                     f"{', '.join(f'{f:.1f}' for f in r['fid'])} | {r['median_fid']:.1f} | {r['worst_fid']:.1f} |")
    return "\n".join(lines)


def versions() -> dict:
    out = {}
    for name in ("torch", "tensorflow"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"], choices=["torch", "tf"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per run (CPU-minutes)")
    parser.add_argument("--steps", type=int, default=0, help="train this many G steps instead of a budget (smoke tests)")
    parser.add_argument("--n", type=int, default=5000, help="samples scored per checkpoint; default 5000")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="G steps between kept checkpoints")
    parser.add_argument("--curve", action="store_true", help="score every kept checkpoint (FD against CPU-minutes)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once, each on a core of its own")
    parser.add_argument("--data-dir", help="dataset root; default $GANBENCH_DATA")
    parser.add_argument("--runs-dir", type=Path, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON result")
    args = parser.parse_args(argv)
    if not 1 <= args.parallel <= (os.cpu_count() or 1):
        parser.error(f"--parallel must be in [1, {os.cpu_count()}]")
    work = args.runs_dir or Path(tempfile.mkdtemp(prefix="quality-recipes-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs = [{"recipe": recipe, "dataset": args.dataset, "backend": backend, "seed": seed, "minutes": args.minutes,
             "steps": args.steps, "n": args.n, "checkpoint_every": args.checkpoint_every, "curve": args.curve,
             "data_dir": args.data_dir, "run_dir": str(work / f"{recipe}-{args.dataset}-{backend}-s{seed}")}
            for recipe in args.recipes for seed in args.seeds for backend in args.backends]
    cores = list(range(args.parallel)) if args.parallel > 1 else [None]
    with ThreadPoolExecutor(len(cores)) as pool:
        free = list(cores)

        def on_a_core(job):
            core = free.pop()
            try:
                return train_and_score(job, core)
            finally:
                free.append(core)

        runs = list(pool.map(on_a_core, jobs))
    rows = summary_rows(runs)
    result = {"machine": machine(), "versions": versions(), "minutes": args.minutes, "n": args.n,
              "command": " ".join(["python", "benchmarks/quality_recipes.py", *(argv or sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d"), "summary": rows, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    if not args.runs_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
