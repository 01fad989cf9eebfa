"""The resolved training configuration: one frozen dataclass, validated in one place,
written into the run directory and into every checkpoint."""

import dataclasses
import json
import math
from dataclasses import dataclass

from ganbench.errors import GanbenchError
from ganbench.augment import parse_policy
from ganbench.precision import PRECISIONS
from ganbench.validation import MAX_INT, short, type_name

LOSSES = {
    "ns": "non-saturating: D softplus(-D(x)) + softplus(D(G(z))), G softplus(-D(G(z)))",
    "minimax": "the original minimax game: D as ns, G -softplus(D(G(z))) (saturates)",
    "hinge": "D relu(1 - D(x)) + relu(1 + D(G(z))), G -D(G(z)) (SNGAN)",
    "wgan-gp": "D D(G(z)) - D(x) + lambda * (|grad D(x_hat)| - 1)^2, G -D(G(z)) (WGAN-GP)",
    "rpgan": "relativistic pairing: D softplus(D(G(z)) - D(x)), G softplus(D(x) - D(G(z))), real i with fake i (R3GAN)",
    "ls": "least squares: D (D(x) - 1)^2 / 2 + D(G(z))^2 / 2, G (D(G(z)) - 1)^2 / 2 (LSGAN)",
}
LR_DECAYS = ("none", "linear")
# --best-metric: the periodic evaluation's metrics a best checkpoint can follow, and which way is better
BEST_METRICS = {"fid": "lower", "kid": "lower", "intra_fid": "lower", "class_kl": "lower", "score": "higher",
                "precision": "higher", "recall": "higher", "coverage": "higher", "class_accuracy": "higher"}
CONDITIONAL_METRICS = ("intra_fid", "class_accuracy")
# the execution modes any backend has (graph: tf only; cudagraphs: torch on CUDA only)
MODES = ("default", "eager", "graph", "compiled", "cudagraphs")
EPS_FORMS = {
    "torch": "eps added to the bias-corrected sqrt(v) (torch.optim.Adam)",
    "keras": "eps added to sqrt(v) before the bias correction (Keras' and TensorFlow's Adam)",
}
UPDATES = {
    "alternating": "n_dis D updates, then a G update scored by the updated D",
    "simultaneous": "G and D gradients from one forward of G and D, both applied (TensorFlow's DCGAN tutorial)",
}


@dataclass(frozen=True)
class TrainConfig:
    model: str = "dcgan"
    dataset: str = "mnist"       # or "folder" (then image_dir)
    backend: str = "torch"
    steps: int = 1000            # generator updates
    batch_size: int = 64         # images per D update
    batch_size_g: int = 0        # images per G update from its own noise; 0: reuse the last D update's fakes
    loss: str = "ns"
    update: str = "alternating"  # or "simultaneous" (UPDATES)
    gp_lambda: float = 10.0      # WGAN-GP penalty weight
    lr_decay: str = "none"       # "linear": both learning rates fall linearly to 0 at `steps`
    width: float = 1.0           # channel multiplier of the sngan/wgan_gp architectures
    image_size: int = 0          # 0: the model's size for the dataset (48 for stl10, else 32)
    image_dir: str = ""          # the folder of dataset "folder"
    channels: int = 0            # 0: the dataset's (folder: 1 if every image is grayscale, else 3)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8            # Adam epsilon
    eps_form: str = "torch"      # where eps enters Adam's update (EPS_FORMS), the same in both backends
    mode: str = "default"        # eager | graph (tf) | compiled; default: torch eager, tf graph
    n_dis: int = 1               # D updates per G update
    seed: int = 0
    sample_every: int = 100
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    log_every: int = 10
    eval_every: int = 0          # evaluate every N steps (0: never); needs the dataset's classifier
    eval_n: int = 5000           # samples per periodic evaluation
    best_metric: str = ""        # checkpoints/best follows this eval metric ("": fid, intra_fid when conditional)
    ema_decay: float = 0.0       # EMA of G's weights and buffers after each G update (0: no EMA)
    ema_start: int = 0           # G updates during which the EMA copies G (BigGAN: 1000)
    hflip: bool = False          # flip each real image horizontally with probability 1/2 (keyed)
    ortho_reg: float = 0.0       # BigGAN's orthogonal regularisation of G's weights (0: off)
    r1: float = 0.0              # R1: gamma of the zero-centred gradient penalty on reals (0: off)
    r2: float = 0.0              # R2: the same on fakes (0: off)
    reg_every: int = 1           # lazy R1/R2: every K G steps, with gamma * K (StyleGAN2's lazy regularisation)
    lecam: float = 0.0           # LeCam regularisation's weight in D's loss (0: off)
    lecam_decay: float = 0.99    # the decay of its moving averages of D's outputs
    cr: float = 0.0              # bCR: weight of the consistency terms on reals and on fakes in D's loss (0: off)
    data_limit: float = 0.0      # train on a keyed, class-balanced subset: N images, or a fraction in (0, 1); 0: all
    diffaugment: str = ""        # DiffAugment policies at every D call, e.g. "color,translation,cutout" ("": off)
    precision: str = "fp32"      # fp32, bf16 or fp16: what convolutions and dense layers compute in (precision.py)
    sync_bn: bool = True         # several processes: BatchNorm over the global batch (else per replica)
    nproc: int = 1               # the processes the run trains on; --resume may change it
    devices: int = 1             # tf: replicas in each process (MirroredStrategy over local devices)

    def validate(self) -> "TrainConfig":
        """Raise GanbenchError naming the first bad field; return self for chaining."""
        from ganbench.archs import ARCHS, CONDITIONAL, check_size
        from ganbench.backends import BACKENDS
        from ganbench.data import DATASETS, FOLDER, LABELLED

        for field, known in (("model", ARCHS), ("dataset", {**DATASETS, FOLDER: None}), ("backend", BACKENDS)):
            value = getattr(self, field)
            if value not in known:
                raise GanbenchError(f"unknown {field} {short(value)} (choose from {', '.join(known)})")
        for field in ("steps", "batch_size", "n_dis", "reg_every", "nproc", "devices", "sample_every", "checkpoint_every",
                      "keep_checkpoints", "log_every", "eval_n"):
            if getattr(self, field) <= 0:
                raise GanbenchError(f"{field.replace('_', '-')} must be positive, got {getattr(self, field)}")
        for field in ("batch_size_g", "image_size", "channels"):
            if getattr(self, field) < 0:
                raise GanbenchError(f"{field.replace('_', '-')} must be 0 (automatic) or positive, got {getattr(self, field)}")
        if self.channels not in (0, 1, 3):
            raise GanbenchError(f"channels must be 1 or 3, got {self.channels}")
        if self.loss not in LOSSES:
            raise GanbenchError(f"unknown loss {short(self.loss)} (choose from {', '.join(LOSSES)})")
        if self.update not in UPDATES:
            raise GanbenchError(f"unknown update {short(self.update)} (choose from {', '.join(UPDATES)})")
        if self.update == "simultaneous" and (self.n_dis != 1 or self.batch_size_g or self.loss == "wgan-gp"):
            raise GanbenchError("update 'simultaneous' needs n-dis 1, batch-size-g 0 and a loss other than wgan-gp")
        parse_policy(self.diffaugment)
        if self.data_limit < 0 or (self.data_limit >= 1 and self.data_limit != int(self.data_limit)):
            raise GanbenchError(f"data-limit must be a count of images, a fraction in (0, 1) or 0 (all), got {self.data_limit}")
        if self.best_metric and self.best_metric not in BEST_METRICS:
            raise GanbenchError(f"unknown best-metric {short(self.best_metric)} (choose from {', '.join(BEST_METRICS)})")
        if self.best_metric and not self.eval_every:
            raise GanbenchError("best-metric needs eval-every: the best checkpoint is chosen by the periodic evaluation")
        if self.cr < 0:
            raise GanbenchError(f"cr must be 0 (off) or positive, got {self.cr}")
        if self.cr and self.update == "simultaneous":
            raise GanbenchError("cr needs update 'alternating' (the simultaneous update has no D update of its own)")
        if self.r1 < 0 or self.r2 < 0:
            raise GanbenchError(f"r1 and r2 must be 0 (off) or positive, got {self.r1} and {self.r2}")
        if self.loss == "rpgan" and self.batch_size_g not in (0, self.batch_size):
            raise GanbenchError("loss rpgan pairs each fake with a real: batch-size-g must be 0 or the batch size")
        if self.lecam < 0 or not 0 <= self.lecam_decay < 1:
            raise GanbenchError(f"lecam must be 0 (off) or positive and lecam-decay in [0, 1), got {self.lecam} and "
                                f"{self.lecam_decay}")
        if self.lecam and (self.nproc > 1 or self.devices > 1):
            raise GanbenchError("lecam trains in one process on one device (its averages of D's outputs are not "
                                "yet synchronised across replicas)")
        if (self.r1 or self.r2) and (self.loss == "wgan-gp" or self.update == "simultaneous"):
            raise GanbenchError("r1/r2 need update 'alternating' and a loss other than wgan-gp (which has its own "
                                "gradient penalty)")
        if self.eps_form not in EPS_FORMS:
            raise GanbenchError(f"unknown adam-eps-form {short(self.eps_form)} (choose from {', '.join(EPS_FORMS)})")
        if self.precision not in PRECISIONS:
            raise GanbenchError(f"unknown precision {short(self.precision)} (choose from {', '.join(PRECISIONS)})")
        if self.devices > 1 and self.backend != "tf":
            raise GanbenchError("devices: the torch backend runs one device per process (use --nproc)")
        if self.lr_decay not in LR_DECAYS:
            raise GanbenchError(f"unknown lr-decay {short(self.lr_decay)} (choose from {', '.join(LR_DECAYS)})")
        if self.image_size:
            check_size(self.model, self.image_size)
        if self.model in CONDITIONAL and self.dataset not in LABELLED:
            raise GanbenchError(f"{self.model} is class-conditional and needs labels: dataset {short(self.dataset)} has "
                                f"none (choose from {', '.join(LABELLED)})")
        if (self.dataset == FOLDER) != bool(self.image_dir):
            raise GanbenchError("dataset 'folder' needs --image-dir, and --image-dir needs dataset 'folder'")
        if self.mode not in MODES:
            raise GanbenchError(f"unknown mode {short(self.mode)} (choose from {', '.join(MODES)})")
        if self.seed < 0:
            raise GanbenchError(f"seed must be 0 or positive, got {self.seed}")
        if self.eval_every < 0:
            raise GanbenchError(f"eval-every must be 0 (off) or positive, got {self.eval_every}")
        for field in ("lr_g", "lr_d", "eps", "width", "gp_lambda"):
            if not 0 < getattr(self, field) < math.inf:
                raise GanbenchError(f"{field.replace('_', '-')} must be positive and finite, got {getattr(self, field)}")
        if not 0 <= self.ema_decay < 1:
            raise GanbenchError(f"ema-decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.ortho_reg < math.inf:
            raise GanbenchError(f"ortho-reg must be 0 (off) or positive and finite, got {self.ortho_reg}")
        if self.ema_start < 0:
            raise GanbenchError(f"ema-start must be 0 or positive, got {self.ema_start}")
        for field in ("beta1", "beta2"):
            if not 0 <= getattr(self, field) < 1:
                raise GanbenchError(f"{field} must be in [0, 1), got {getattr(self, field)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if not isinstance(data, dict):
            raise GanbenchError(f"a config must be a JSON object of fields, got {type_name(data)}")
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            named = [key if len(key) <= 40 else key[:37] + "..." for key in unknown[:5]]
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise GanbenchError(f"unknown config key(s): {', '.join(named)}{more}")
        values = {}
        for name, value in data.items():
            kind = type(getattr(cls, name))
            if kind is float and type(value) is int and abs(value) <= 2**53:
                value = float(value)
            if type(value) is not kind:
                raise GanbenchError(f"config key {name!r} must be {kind.__name__}, got {short(value)}")
            if kind is int and abs(value) > MAX_INT:
                raise GanbenchError(f"config key {name!r} is out of range, got {short(value)}")
            values[name] = value
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
