"""The training cases of the data-parallel tests, shared by the test (one process) and
distributed_worker.py (one replica each)."""

import numpy as np
from safetensors.numpy import save_file

from ganbench.archs import build_spec
from ganbench.backends import get_backend
from ganbench.config import TrainConfig
from ganbench.distributed import SINGLE, shard_inputs
from ganbench.init import init_gan
from ganbench.rng import dropout_step_key, normal_noise
from ganbench.step_inputs import StepInputs
from ganbench.training.loop import check_finite

BATCH = 8
CASES = {  # name: (model, channels, size, width, config fields)
    "dcgan": ("dcgan", 1, 32, 1.0, dict(loss="ns")),
    "sngan_resnet": ("sngan_resnet", 3, 32, 0.0625, dict(loss="hinge", n_dis=2, batch_size_g=2 * BATCH,
                                                         beta1=0.0, beta2=0.9, ema_decay=0.9)),
    "wgan_gp_resnet": ("wgan_gp_resnet", 3, 32, 0.0625, dict(loss="wgan-gp", n_dis=2, batch_size_g=2 * BATCH,
                                                             beta1=0.0, beta2=0.9)),
    "dcgan_tf_tutorial": ("dcgan_tf_tutorial", 1, 28, 1.0, dict(loss="ns", update="simultaneous")),
}


def case_setup(case: str):
    model, channels, size, width, fields = CASES[case]
    spec = build_spec(model, channels, size, width)
    config = TrainConfig(model=model, batch_size=BATCH, **fields)
    return spec, config


def global_inputs(spec, config, step: int) -> StepInputs:
    """Random global inputs of a step: [n_dis, BATCH] reals and noise, a fresh G batch."""
    rng = np.random.default_rng(step)
    n_dis, (c, h, w) = config.n_dis, spec.image_shape
    return StepInputs(
        reals=rng.uniform(-1, 1, (n_dis, BATCH, h, w, c)).astype(np.float32),
        z=normal_noise(0, 2, (n_dis, BATCH, spec.z_dim), step),
        z_g=normal_noise(0, 3, (config.batch_size_g, spec.z_dim), step) if config.batch_size_g else None,
        alphas=rng.uniform(0, 1, (n_dis, BATCH)).astype(np.float32) if config.loss == "wgan-gp" else None,
        dropout_key=dropout_step_key(0, step) if spec.has_dropout else None,
    )


def flat(state: dict) -> dict:
    """Every weight, buffer and Adam moment of a state, by name, in its own dtype."""
    tensors = {f"{key}.{name}": value for key, arrays in state["nets"].items() for name, value in arrays.items()}
    for key, opt in state["opt"].items():
        for moment in ("exp_avg", "exp_avg_sq"):
            tensors.update({f"opt.{key}.{moment}.{name}": value for name, value in opt[moment].items()})
    return {name: np.ascontiguousarray(value) for name, value in tensors.items()}


def run_case(backend: str, case: str, dtype: str, steps: int, sync_bn: bool, world=SINGLE, out=None,
             nan_rank: int = -1, devices: int = 1) -> dict:
    """The state after `steps` steps on this replica's rows; rank 0 writes it to `out`. Every
    step's losses are checked as the training loop checks them (TrainingDiverged)."""
    spec, config = case_setup(case)
    config = config.replace(sync_bn=sync_bn, backend=backend, devices=devices)
    gan = get_backend(backend).GAN(spec, {"nets": init_gan(spec, 0)}, config, dtype=dtype, world=world)
    losses = []
    for s in range(steps):
        inputs = shard_inputs(global_inputs(spec, config, s), world)
        if world.rank == nan_rank:  # one replica's batch turns the step's losses non-finite
            inputs.reals[:] = np.nan
        losses.append(gan.train_step(inputs))
        check_finite(losses[-1], s + 1)
    state = gan.export_state()
    if out and world.is_main:
        tensors = flat(state)
        tensors["losses"] = np.array([[d[k] for k in sorted(d)] for d in losses], np.float64)
        save_file(tensors, out)
    # as the training loop ends: every rank arrives before any leaves the group (a rank that left
    # while another was still writing made gloo abort the other, SIGABRT, once in CI)
    gan.collective.close(together=True)
    return {"state": state, "losses": losses}
