"""The training loop, identical for every backend: numpy batches and noise in, losses out.

Step s (counted in G updates, from 0) uses data batches s*n_dis ... s*n_dis + n_dis - 1 and the
noise keyed on (seed, s): resuming from a checkpoint needs nothing but its step.
"""

import contextlib
import dataclasses
import math
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ganbench import checkpoint, data, validation
from ganbench.backends import get_backend
from ganbench.config import BEST_METRICS, CONDITIONAL_METRICS, TrainConfig
from ganbench.distributed import check_divides, current_world, shard_inputs
from ganbench.errors import GanbenchError, TrainingDiverged, TrainingStopped
from ganbench.fileio import atomic_write
from ganbench.images import save_grid
from ganbench.init import init_gan
from ganbench.data.batches import limited
from ganbench.model import model_size, spec_for_config
from ganbench.rng import STREAM_FIXED_NOISE, normal_noise
from ganbench.sampling import sample_labels
from ganbench.training.control import EXIT_CODES, LOCK_FILE, RunLock, StopRequests
from ganbench.training.inputs import draw_step_inputs
from ganbench.training.logger import RunLogger

CONFIG_FILE = "config.json"
SAMPLES_DIR = "samples"
GRID_SIZE = 64
# what a resumed run may change: its length, its outputs, and where and how it runs (not the recipe)
RESUME_MAY_CHANGE = {"steps", "sample_every", "checkpoint_every", "keep_checkpoints", "log_every", "backend",
                     "mode", "eval_every", "eval_n", "best_metric", "precision", "nproc", "devices"}


def prepare_data(config: TrainConfig, data_dir) -> tuple:
    """(config with what "automatic" resolved to, spec, batch stream). The images are read before
    anything is written: bad data leaves no trace. A class-conditional model's stream carries the
    labels."""
    images, labels = data.gan_data(config.dataset, model_size(config), data_dir, config.image_dir, config.channels)
    images, labels = limited(images, labels, config.data_limit, config.seed)
    config = config.replace(image_size=images.shape[1], channels=images.shape[3])
    spec = spec_for_config(config)
    config = config.replace(best_metric=chosen_best_metric(config, spec))
    stream = data.BatchStream(images, config.batch_size, config.seed, labels if spec.conditional else None)
    return config, spec, stream


def chosen_best_metric(config: TrainConfig, spec) -> str:
    """The metric checkpoints/best follows: --best-metric, else FD (intra-class FD for a
    class-conditional model); "" without periodic evaluation."""
    if not config.eval_every:
        return ""
    if config.best_metric in CONDITIONAL_METRICS and not spec.conditional:
        raise GanbenchError(f"best-metric {config.best_metric} needs a class-conditional model")
    return config.best_metric or ("intra_fid" if spec.conditional else "fid")


def lr_factor(config: TrainConfig, step: int) -> float:
    """The learning-rate multiplier of G step `step` (0-based): linear decay reaches 0 at `steps`."""
    return 1.0 - step / config.steps if config.lr_decay == "linear" else 1.0


def check_fresh_run_dir(run_dir: Path) -> None:
    """Refuse to write into a directory that holds anything (but an idle run lock): nothing is ever
    overwritten."""
    if run_dir.exists() and (not run_dir.is_dir() or any(p.name != LOCK_FILE for p in run_dir.iterdir())):
        what = "another run" if (run_dir / CONFIG_FILE).exists() else "files"
        raise GanbenchError(f"output directory {run_dir} already holds {what} (use --resume, or another --out)")


def check_same_recipe(saved: TrainConfig, config: TrainConfig, run_dir: Path) -> None:
    """A resumed run continues the same computation: only RESUME_MAY_CHANGE may differ."""
    names = [field.name for field in dataclasses.fields(TrainConfig) if field.name not in RESUME_MAY_CHANGE]
    changed = [f"{name} {getattr(saved, name)!r} -> {getattr(config, name)!r}" for name in names
               if getattr(saved, name) != getattr(config, name)]
    if changed:
        raise GanbenchError(f"cannot resume the run in {run_dir} with another recipe: {'; '.join(changed)}")


def saved_config(run_dir: Path) -> TrainConfig:
    """The run's config.json, type- and range-checked."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise GanbenchError(f"cannot resume: {path} not found")
    fields = validation.read_json(path, "run's config")
    try:
        return TrainConfig.from_dict(fields).validate()
    except GanbenchError as exc:
        raise GanbenchError(f"{path}: {exc}") from None


def writer_info(backend) -> dict:
    return {"backend": backend.NAME, "framework": backend.framework_version(), "host": platform.node()}


def check_finite(losses: dict, step: int) -> None:
    for name, value in losses.items():
        if not math.isfinite(value):
            network = "D" if name.startswith("d_") else "G"
            raise TrainingDiverged(f"non-finite {name} ({value}) in network {network} at step {step}")


def train(config: TrainConfig, run_dir, resume: bool = False, data_dir=None, progress: bool = True,
          time_limit_s: float | None = None) -> Path:
    """Train to `config.steps` G updates, writing samples, logs and checkpoints under `run_dir`.
    Returns the last checkpoint's path. resume: continue the run in `run_dir` from its newest
    valid checkpoint, with the same recipe. Raises TrainingStopped, after writing a checkpoint of
    the step it finished, on SIGTERM/SIGINT or when the next step would pass `time_limit_s`.

    Under torchrun (or TF_CONFIG for tf) each process trains its share of every global batch
    (ganbench.distributed); only rank 0 writes, the others read the same files."""
    config.validate()
    world = current_world(config.backend)
    check_divides(config, world)
    config = config.replace(nproc=world.size)
    run_dir = Path(run_dir)
    with contextlib.ExitStack() as held:
        if resume:
            saved = saved_config(run_dir)
            if world.is_main:
                held.enter_context(RunLock(run_dir))  # refused at once while another process trains here
        else:
            check_fresh_run_dir(run_dir)
        # the run records what "automatic" resolved to, so that sampling needs no data
        config, spec, stream = prepare_data(config, data_dir)
        if resume:
            check_same_recipe(saved, config, run_dir)
        if resume and checkpoint.stored(run_dir):
            (state, meta, path, _), skipped = checkpoint.load_newest_valid(run_dir)
            for bad, reason in skipped:
                print(f"ganbench: skipped {bad.name}: {reason}", file=sys.stderr)
            start = meta["step"]
            if start > config.steps:
                raise GanbenchError(f"the run in {run_dir} is at step {start}: --steps {config.steps} would undo "
                                    "training (give more steps to continue)")
            if start == config.steps:
                return path  # already done: nothing is written
        else:  # a new run, or one stopped before its first checkpoint: from the start
            state, start, path = {"nets": init_gan(spec, config.seed)}, 0, None
        backend = get_backend(config.backend)
        gan = backend.GAN(spec, state, config, mode=config.mode, world=world)
        gan.collective.barrier()  # every rank has checked the run directory before rank 0 writes to it
        config = config.replace(mode=gan.mode)  # the run records the mode that ran, not "default"
        evaluator = PeriodicEval(config, spec, data_dir) if config.eval_every and world.is_main else None
        stop = held.enter_context(StopRequests())
        if world.is_main:
            if not resume:  # everything that could refuse the input has run: now the directory
                run_dir.mkdir(parents=True, exist_ok=True)
                held.enter_context(RunLock(run_dir))
                check_fresh_run_dir(run_dir)  # a process that won the race has written its run by now
            atomic_write(run_dir / CONFIG_FILE, config.to_json().encode())
        last = run_steps(gan, config, spec, stream, run_dir, start, path, backend, evaluator,
                         progress and world.is_main, stop, time_limit_s)
        gan.collective.close(together=True)  # the workers leave together once the last checkpoint is written
        return last


def run_steps(gan, config, spec, stream, run_dir: Path, start: int, last_path, backend, evaluator, progress: bool,
              stop: StopRequests, time_limit_s: float | None) -> Path:
    """Steps start ... config.steps - 1 with their grids, logs, checkpoints and evaluations; in a
    process other than rank 0 (gan.world), only the steps and the decisions taken together."""
    fixed_z = normal_noise(config.seed, STREAM_FIXED_NOISE, (GRID_SIZE, spec.z_dim))
    fixed_labels = sample_labels(spec, GRID_SIZE)  # a conditional G: classes 0, 1, ... across the grid
    world, main = gan.world, gan.world.is_main
    logger = RunLogger(run_dir, start) if main else NoLogger()
    images_per_step = config.batch_size * config.n_dis
    bar = tqdm(total=config.steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    started = window_start = time.perf_counter()
    window_steps, save_s, slowest = 0, 0.0, 0.0
    best = BestCheckpoint(run_dir, config.best_metric) if evaluator else None
    saved_step = None
    try:
        for step in range(start, config.steps):
            step_start = time.perf_counter()
            if config.lr_decay != "none":
                gan.set_lr_factor(lr_factor(config, step))
            with peers_lost_as_error(backend, world, step):
                losses = gan.train_step(shard_inputs(draw_step_inputs(config, stream, spec, step), world))
            done = step + 1
            check_finite(losses, done)
            window_steps += 1
            rate = window_steps * images_per_step / (time.perf_counter() - window_start)
            bar.update(1)
            bar.set_postfix(d_loss=f"{losses['d_loss']:.3f}", g_loss=f"{losses['g_loss']:.3f}", img_s=f"{rate:.0f}")
            if done % config.log_every == 0 or done == config.steps:
                logger.log(done, {**losses, "img_per_s": rate})
                window_start, window_steps = time.perf_counter(), 0
            if main and (done % config.sample_every == 0 or done == config.steps):
                save_grid(gan.generate(fixed_z, labels=fixed_labels), run_dir / SAMPLES_DIR / f"step_{done:07d}.png")
            # the time limit leaves room for two of the slowest steps (the first, which traces or
            # compiles, only until there is another) and the last checkpoint's write
            step_s = time.perf_counter() - step_start
            slowest = step_s if step == start + 1 else max(slowest, step_s)
            out_of_time = (time_limit_s is not None
                           and time.perf_counter() - started + 2 * slowest + save_s > time_limit_s)
            # read once: a signal arriving after this stops after the next step; decided together
            with peers_lost_as_error(backend, world, step):
                signum, out_of_time = agreed_stop(gan.collective, stop.signal, out_of_time)
            stopping = (signum or out_of_time) and done < config.steps
            if done % config.checkpoint_every == 0 or done == config.steps or stopping:
                save_start = time.perf_counter()
                last_path = save_checkpoint(gan, run_dir, done, config, spec, backend, write=main,
                                            protect=best and best.protected)
                save_s, saved_step = time.perf_counter() - save_start, done
            if evaluator and (done % config.eval_every == 0 or done == config.steps):
                bar.set_description("eval")
                metrics = evaluator(gan)
                logger.log(done, metrics)
                value = metrics.get(f"eval/{config.best_metric}")
                if best.improves(value):
                    if saved_step != done:  # the best is kept as a checkpoint of its own step
                        last_path = save_checkpoint(gan, run_dir, done, config, spec, backend, protect=best.protected)
                        saved_step = done
                    best.keep(last_path, done, value)
                bar.set_description(None)
                window_start, window_steps = time.perf_counter(), 0  # eval time is not training time
            if stopping:
                message = stopped_message(signum, done, last_path, run_dir) if main else ""  # said once
                raise TrainingStopped(message, EXIT_CODES.get(signum, 0))
    finally:
        bar.close()
        logger.close()
    return last_path


@contextlib.contextmanager
def peers_lost_as_error(backend, world, step: int):
    """In a distributed run, a collective that fails (another worker died or hung up) becomes one
    line; the checkpoints written so far stay."""
    try:
        yield
    except backend.COLLECTIVE_ERRORS as exc:
        if not world.distributed:
            raise
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanbenchError(f"lost another worker during step {step + 1} ({first_line[:200]}); "
                            "continue with --resume") from None


def agreed_stop(collective, signum, out_of_time: bool) -> tuple:
    """(signal, out of time) as every process sees them: the largest signal number any received,
    and whether any ran out of time, so all stop after the same step."""
    if not collective.world.distributed:
        return signum, out_of_time
    largest, late = collective.max([float(signum or 0), float(out_of_time)])
    return (signal.Signals(int(largest)) if largest else None), bool(late)


class BestCheckpoint:
    """checkpoints/best: the checkpoint with the best value of `metric` among the periodic
    evaluations, never pruned; a resumed run goes on from its record (unless it follows another
    metric now)."""

    def __init__(self, run_dir: Path, metric: str):
        self.metric, self.lower = metric, BEST_METRICS[metric] == "lower"
        saved = checkpoint.best_record(run_dir)
        self.record = saved if saved and saved["metric"] == metric else None

    @property
    def protected(self) -> str | None:
        """The file name of the best checkpoint, which pruning keeps."""
        return self.record and self.record["checkpoint"]

    def improves(self, value) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.record is None:
            return True
        return value < self.record["value"] if self.lower else value > self.record["value"]

    def keep(self, path: Path, step: int, value: float) -> None:
        self.record = checkpoint.write_best(path, step, self.metric, value)


class NoLogger:
    """The logger of a process that does not write (a rank other than 0)."""

    def log(self, step: int, values: dict) -> None:
        pass

    def close(self) -> None:
        pass


def stopped_message(signum, step: int, path: Path, run_dir: Path) -> str:
    why = f"stopped by {signal.Signals(signum).name}" if signum else "time limit reached"
    return f"{why} after step {step}; checkpoint {path}; continue with: ganbench train --resume --out {run_dir}"


class PeriodicEval:
    """Classifier metrics of `eval_n` samples against the test split, logged as eval/<metric>.
    Built before training starts, so a missing classifier fails before any step is taken."""

    def __init__(self, config: TrainConfig, spec, data_dir):
        from ganbench.metrics import evaluate
        from ganbench.metrics.classifier import load_classifier

        self.evaluate, self.config, self.spec, self.data_dir = evaluate, config, spec, data_dir
        self.classifier = load_classifier(config.dataset)

    def __call__(self, gan) -> dict:
        images, labels = self.evaluate.generated_images(gan, self.spec, self.config.eval_n, self.config.seed)
        result = self.evaluate.evaluate(images, self.config.dataset, self.config.eval_n, "test",
                                        data_dir=self.data_dir, classifier=self.classifier, labels=labels)
        return {f"eval/{name}": value for name, value in result["metrics"].items()}


def save_checkpoint(gan, run_dir: Path, step: int, config: TrainConfig, spec, backend, write: bool = True,
                    protect: str | None = None) -> Path:
    """The step's checkpoint, once its weights are checked finite; write=False (ranks other than
    0, whose weights are rank 0's) checks the same weights and writes nothing. protect: a
    checkpoint's file name that pruning keeps (the best)."""
    state = gan.export_state()
    for key, arrays in state["nets"].items():
        bad = [name for name, value in arrays.items() if not np.all(np.isfinite(value))]
        if bad:
            raise TrainingDiverged(f"non-finite weights in network {key} ({bad[0]}) at step {step}; last checkpoint kept")
    if not write:
        return checkpoint.checkpoint_path(run_dir, step)
    return checkpoint.save(run_dir, step, state, config, spec, writer_info(backend), config.keep_checkpoints, protect)
