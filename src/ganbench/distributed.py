"""Data-parallel training, framework-free: who this process is, which rows of a step it takes,
what every process must decide together, and the launcher of `ganbench train --nproc N`.

The recipe does not depend on the world size: every process draws the step's global inputs
(ganbench.training.inputs, keyed on (seed, stream, step)) and takes its contiguous rows, so N
processes with synchronised BatchNorm compute what one process computes, and any checkpoint
resumes at any world size. The backends do the communication with their own engines
(torch.distributed; tf.distribute).
"""

import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np

from ganbench.errors import GanbenchError


@dataclass(frozen=True)
class World:
    """This process's place among the replicas: rank in [0, size), local_rank on its host."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def torchrun_world() -> World | None:
    """The World that torchrun (or `ganbench train --nproc`) describes in RANK, WORLD_SIZE and
    LOCAL_RANK; None when they are absent."""
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    except (KeyError, ValueError):
        raise GanbenchError("RANK and WORLD_SIZE must be integers (set by torchrun)") from None


def tf_config_world() -> World | None:
    """The World of TF_CONFIG (tf.distribute's cluster description): its workers, in order, are the
    ranks (LOCAL_RANK, which `train --nproc` sets, picks a worker's GPU); None when it is absent."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers, task = config["cluster"]["worker"], config["task"]
        if task["type"] != "worker":
            raise GanbenchError(f"TF_CONFIG task type {task['type']!r}: ganbench runs workers only")
        return World(int(task["index"]), len(workers), int(os.environ.get("LOCAL_RANK", 0)))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise GanbenchError("TF_CONFIG must be JSON with cluster.worker (a list) and task.type/index") from None


def current_world(backend: str) -> World:
    """The World the environment describes for the backend: torchrun's variables for torch,
    TF_CONFIG for tf; a single process when there are none."""
    return (torchrun_world() if backend == "torch" else tf_config_world()) or SINGLE


def check_divides(config, world: World) -> None:
    """The global batches split evenly over the replicas (world.size processes times
    config.devices replicas each), else one line before anything runs."""
    replicas = world.size * config.devices
    what = f"{world.size} processes" if config.devices == 1 else f"{replicas} replicas"
    for name in ("batch_size", "batch_size_g"):
        value = getattr(config, name)
        if value % replicas:
            raise GanbenchError(f"{name.replace('_', '-')} {value} does not split over {what} "
                                f"(give a multiple of {replicas})")


def rows(world: World, total: int) -> slice:
    """This replica's contiguous rows of a global batch of `total` rows."""
    share = total // world.size
    return slice(world.rank * share, (world.rank + 1) * share)


def shard_inputs(inputs, world: World):
    """The replica's share of a step's StepInputs: its rows of every batch (axis 1 of the
    [n_dis, B, ...] arrays, axis 0 of the G update's [B_g, ...] ones)."""
    if not world.distributed:
        return inputs

    def take(array, axis):
        if array is None:
            return None
        index = [slice(None)] * array.ndim
        index[axis] = rows(world, array.shape[axis])
        return np.ascontiguousarray(array[tuple(index)])

    per_update = {name: take(getattr(inputs, name), 1) for name in ("reals", "z", "alphas", "labels", "fake_labels")}
    return dataclasses.replace(inputs, **per_update, z_g=take(inputs.z_g, 0), g_labels=take(inputs.g_labels, 0),
                               transform_args=take(inputs.transform_args, 2),
                               consistency_args=take(inputs.consistency_args, 2),
                               g_transform_args=take(inputs.g_transform_args, 0))


class SingleProcess:
    """The collective operations of a world of one: nothing to agree with."""

    world = SINGLE

    def max(self, values: list) -> list:
        return list(values)

    def barrier(self) -> None:
        pass

    def close(self, together: bool = False) -> None:
        pass
