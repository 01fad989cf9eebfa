"""The Python API: each task of the command line as one call, for notebooks and scripts.

    import ganbench
    last = ganbench.train("dcgan", "runs/demo", steps=500)          # a preset, a .json, or a TrainConfig
    generator = ganbench.load_generator(last, backend="tf")         # either backend, whichever trained it
    images = generator.sample(1000, seed=0)                         # uint8 [N, H, W, C]
    result = ganbench.evaluate(images, "mnist")                     # {"metrics": ..., "protocol": ...}

Everything is numpy at the boundary; frameworks load on first use (`import ganbench` loads none).
"""

from pathlib import Path

import numpy as np

from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError
from ganbench.metrics.evaluate import METRICS
from ganbench.presets import apply_preset


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.dataset}-{config.backend}"


def changed(config: TrainConfig, fields: dict) -> TrainConfig:
    """config with `fields` changed; an unknown field or a wrong type is one clear error."""
    return TrainConfig.from_dict({**config.to_dict(), **fields})


def resolve(config=None, out=None, resume: bool = False, **fields) -> tuple[TrainConfig, Path]:
    """(validated config, run directory) of a run: `config` (a TrainConfig, a preset name or .json
    file, or None for the defaults) with `fields` changed; resume: the run's saved config with
    `fields` changed (loop.train refuses changes to the recipe). out: default runs/<model>-<dataset>-<backend>."""
    from ganbench.training import loop

    if resume:
        if config is not None:
            raise GanbenchError("a resumed run keeps its saved config: give only the fields to change")
        out = Path(out) if out else default_run_dir(changed(TrainConfig(), fields))
        base = loop.saved_config(out)
        if fields.get("backend", base.backend) != base.backend and "mode" not in fields:
            base = base.replace(mode="default")  # the other backend's own default, not this one's mode
        if "eval_every" in fields and "best_metric" not in fields:
            base = base.replace(best_metric="")  # resolved again for the new evaluation schedule
    else:
        base = config if isinstance(config, TrainConfig) else apply_preset(TrainConfig(), config) if config else TrainConfig()
    try:
        resolved = changed(base, fields).validate()
    except GanbenchError as exc:
        if isinstance(config, str):  # the bad value may be the preset's: name the file
            raise GanbenchError(f"{exc} (the config of preset {config} and the fields given)") from None
        raise
    return resolved, Path(out) if out else default_run_dir(resolved)


def train(config=None, out=None, *, resume: bool = False, data_dir=None, progress: bool = True,
          time_limit_minutes: float | None = None, **fields) -> Path:
    """Train a GAN as `ganbench train` does; returns the last checkpoint's path. `config`: a
    TrainConfig, a preset name (ganbench.preset_names()) or a .json file of fields, or None;
    `fields`: TrainConfig fields to change (steps=500, backend="tf", ...). resume=True continues
    the run in `out`. Raises ganbench.GanbenchError on bad input, TrainingStopped on SIGTERM/Ctrl-C
    or the time limit (after a checkpoint), TrainingDiverged on a non-finite loss."""
    from ganbench.training import loop

    config, out = resolve(config, out, resume, **fields)
    time_limit_s = None if time_limit_minutes is None else time_limit_minutes * 60
    return loop.train(config, out, resume=resume, data_dir=data_dir, progress=progress, time_limit_s=time_limit_s)


def evaluate(images: np.ndarray, dataset: str, n: int | None = None, metrics=METRICS, ref: str = "test",
             features: str = "classifier", labels: np.ndarray | None = None, data_dir=None,
             inception_weights=None, download: bool = False) -> dict:
    """Metrics of uint8 NHWC `images` (the first n; default all) against a real split of `dataset`,
    as `ganbench eval` computes them: {"metrics": {name: value}, "protocol": {...}} (and
    "per_class" with `labels`, the classes the images were generated for). metrics: names or a
    comma-separated string of fid, kid, score, pr (precision and recall) and coverage; features:
    "classifier" (the dataset's, offline) or "inception" (torch-fidelity; download=True fetches
    the weights on first use)."""
    from ganbench.metrics import evaluate as ev

    metrics = ev.parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    extractor = ev.feature_extractor(features, dataset, inception_weights, download)
    images = np.asarray(images)
    return ev.evaluate(images, dataset, n or len(images), ref, metrics, data_dir, extractor, labels)
