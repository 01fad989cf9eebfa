"""ganbench: GAN training, sampling and evaluation with identical PyTorch and TensorFlow backends.

The Python API (see ganbench.api and the README):

    import ganbench
    last = ganbench.train("dcgan", "runs/demo", steps=500)
    images = ganbench.load_generator(last, backend="tf").sample(1000)
    print(ganbench.evaluate(images, "mnist")["metrics"])

Importing the package imports no deep-learning framework and no matplotlib: the names below load
their modules on first use (PEP 562), and backends load lazily (ganbench.backends.get_backend).
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "train": "ganbench.api",
    "evaluate": "ganbench.api",
    "export": "ganbench.exporter",
    "TrainConfig": "ganbench.config",
    "preset_names": "ganbench.presets",
    "load_generator": "ganbench.sampling",
    "Generator": "ganbench.sampling",
    "save_grid": "ganbench.images",
    "plot_runs": "ganbench.plot",
    "GanbenchError": "ganbench.errors",
    "TrainingStopped": "ganbench.errors",
    "TrainingDiverged": "ganbench.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
