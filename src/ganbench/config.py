"""The resolved training configuration: one frozen dataclass, validated in one place,
written into the run directory and into every checkpoint."""

import dataclasses
import json
from dataclasses import dataclass

from ganbench.errors import GanbenchError


@dataclass(frozen=True)
class TrainConfig:
    model: str = "dcgan"
    dataset: str = "mnist"
    backend: str = "torch"
    steps: int = 1000            # generator updates
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8            # Adam epsilon, torch form in both backends
    mode: str = "default"        # eager | graph (tf) | compiled; default: torch eager, tf graph
    n_dis: int = 1               # D updates per G update
    seed: int = 0
    sample_every: int = 100
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    log_every: int = 10
    eval_every: int = 0          # evaluate every N steps (0: never); needs the dataset's classifier
    eval_n: int = 5000           # samples per periodic evaluation

    def validate(self) -> "TrainConfig":
        """Raise GanbenchError naming the first bad field; return self for chaining."""
        from ganbench.archs import ARCHS
        from ganbench.backends import BACKENDS
        from ganbench.data import DATASETS

        for field, known in (("model", ARCHS), ("dataset", DATASETS), ("backend", BACKENDS)):
            value = getattr(self, field)
            if value not in known:
                raise GanbenchError(f"unknown {field} {value!r} (choose from {', '.join(known)})")
        for field in ("steps", "batch_size", "n_dis", "sample_every", "checkpoint_every",
                      "keep_checkpoints", "log_every", "eval_n"):
            if getattr(self, field) <= 0:
                raise GanbenchError(f"{field.replace('_', '-')} must be positive, got {getattr(self, field)}")
        if self.mode not in ("default", "eager", "graph", "compiled"):
            raise GanbenchError(f"unknown mode {self.mode!r} (choose from default, eager, graph, compiled)")
        if self.seed < 0:
            raise GanbenchError(f"seed must be 0 or positive, got {self.seed}")
        if self.eval_every < 0:
            raise GanbenchError(f"eval-every must be 0 (off) or positive, got {self.eval_every}")
        for field in ("lr_g", "lr_d", "eps"):
            if not getattr(self, field) > 0:
                raise GanbenchError(f"{field.replace('_', '-')} must be positive, got {getattr(self, field)}")
        for field in ("beta1", "beta2"):
            if not 0 <= getattr(self, field) < 1:
                raise GanbenchError(f"{field} must be in [0, 1), got {getattr(self, field)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise GanbenchError(f"unknown config key(s): {', '.join(unknown)}")
        values = {}
        for name, value in data.items():
            kind = type(getattr(cls, name))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not kind:
                raise GanbenchError(f"config key {name!r} must be {kind.__name__}, got {value!r}")
            values[name] = value
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
