"""The Python API: the README's example runs as written; the lazy names load no framework."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ganbench
from ganbench.errors import GanbenchError

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(quick_classifier, data_dir, tmp_path):
    """In a fresh interpreter, in an empty folder; the classifier cache and the data root by the
    environment, as a user's would be."""
    env = {**os.environ, "GANBENCH_DATA": str(data_dir), "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = eval(done.stdout.strip().splitlines()[-1])  # the metrics dict the example prints
    assert set(printed) == {"fid", "kid", "kid_std", "score", "score_std"} and printed["fid"] > 0
    run = tmp_path / "runs" / "api-demo"
    assert (run / "checkpoints" / "step_0000200.safetensors").is_file()
    for figure in ("grid.png", "curves.png"):
        assert (run / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lazy_names_resolve_to_their_modules():
    from ganbench import api, sampling

    assert ganbench.train is api.train and ganbench.Generator is sampling.Generator
    assert set(ganbench.__all__) <= set(dir(ganbench))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ganbench.nope


def test_resolve_takes_a_preset_a_config_or_fields(tmp_path):
    from ganbench.api import resolve

    config, out = resolve("sngan_cifar10", None, width=0.25)
    assert (config.model, config.width, config.loss, out) == ("sngan_resnet", 0.25, "hinge",
                                                              Path("runs/sngan_resnet-cifar10-torch"))
    config, out = resolve(ganbench.TrainConfig(steps=7), tmp_path, backend="tf")
    assert (config.steps, config.backend, out) == (7, "tf", tmp_path)
    with pytest.raises(GanbenchError, match="unknown preset 'nope'"):
        resolve("nope")
    with pytest.raises(GanbenchError, match=r"unknown config key\(s\): stepz"):
        resolve("dcgan", stepz=3)
    with pytest.raises(GanbenchError, match="config key 'steps' must be int, got '3'"):
        resolve("dcgan", steps="3")
    with pytest.raises(GanbenchError, match="keeps its saved config"):
        resolve("dcgan", tmp_path, resume=True)


def test_evaluate_is_the_eval_computation(quick_classifier, data_dir):
    from ganbench import data
    from ganbench.metrics import evaluate as ev

    images, _ = data.load("mnist", "test", data_dir)
    images = images[:400]
    expected = ev.evaluate(images, "mnist", 400, "test", ("fid", "coverage"), data_dir)
    assert ganbench.evaluate(images, "mnist", metrics=["fid", "coverage"], data_dir=data_dir) == expected
    with pytest.raises(GanbenchError, match="unknown metric 'fdi'"):
        ganbench.evaluate(images, "mnist", metrics="fid,fdi")
    with pytest.raises(GanbenchError, match="unknown feature space 'vgg'"):
        ganbench.evaluate(images, "mnist", features="vgg")


def test_evaluate_documents_the_metric_names_it_accepts():
    """api.evaluate's docstring once named precision, recall and class_kl, which parse_metrics
    refuses: every name it documents must parse, and every metric must be documented."""
    import re

    from ganbench.metrics.evaluate import METRICS, parse_metrics

    from ganbench import api

    doc = " ".join(api.evaluate.__doc__.split())
    documented = re.search(r"comma-separated string of (.*?);", doc).group(1)
    names = re.findall(r"\b(\w+)\b(?![^(]*\))", documented.replace(" and ", ", "))
    assert set(names) == set(METRICS), documented
    assert parse_metrics(",".join(names)) == tuple(names)
