"""Backends translate a GANSpec into a framework. They load lazily: `import ganbench` imports none.

Each backend package has the same files and names: nets.py builds a network from a spec, and
step.py holds `GAN`, which trains, samples and exports its state in the canonical layout:

    state = {"nets": {"G": {name: array}, "D": {...}},
             "opt":  {"G": {"step": int, "exp_avg": {name: array}, "exp_avg_sq": {...}}, "D": {...}}}
"""

import importlib
import importlib.util

from ganbench.errors import GanbenchError

BACKENDS = {"torch": ("torch", "torch"), "tf": ("tensorflow", "tf")}


def get_backend(name: str):
    """The backend's step module (with class GAN), importing its framework only now."""
    if name not in BACKENDS:
        raise GanbenchError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    framework, extra = BACKENDS[name]
    if importlib.util.find_spec(framework) is None:
        raise GanbenchError(f"backend {name!r} needs {framework}: pip install 'ganbench[{extra}]'")
    return importlib.import_module(f"ganbench.backends.{name}.step")


def resolve_mode(backend: str, requested: str, modes: dict, default: str) -> str:
    """The execution mode a backend runs: `default` maps to its own default; unknown ones fail."""
    mode = default if requested == "default" else requested
    if mode not in modes:
        raise GanbenchError(f"the {backend} backend has no {requested!r} mode (choose from {', '.join(modes)})")
    return mode
