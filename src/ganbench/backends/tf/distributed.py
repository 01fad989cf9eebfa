"""tf.distribute for ganbench's data-parallel step: MultiWorkerMirroredStrategy across the
processes of TF_CONFIG, one replica each. The step runs under strategy.run inside the step's
tf.function; ganbench's variables stay plain per-process variables (created outside the
strategy's scope), kept identical on every replica because every update applies the same
all-reduced gradients, as the torch backend does. The replica context's all-reduce serves the
gradient mean, BatchNorm over the global batch (its gradient is the all-reduce of the gradient)
and the losses' mean.
"""

import tensorflow as tf

from ganbench.distributed import World
from ganbench.errors import GanbenchError


def strategy_for(world: World):
    """The strategy of the TF_CONFIG cluster: created before any variable, as TensorFlow requires
    (it configures the collective ops of the process). One replica per process: on a GPU machine
    the worker sees only GPU <local rank> (MultiWorkerMirroredStrategy would otherwise make a
    replica of every local GPU, each applying ganbench's updates to the same plain variables)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.set_visible_devices(gpus[world.local_rank % len(gpus)], "GPU")
    return tf.distribute.MultiWorkerMirroredStrategy()


def local_strategy(devices: int):
    """MirroredStrategy over `devices` local devices: the first GPUs, or as many logical CPU
    devices carved from the CPU (which needs a process whose TensorFlow runtime has not started)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if devices > len(gpus):
            raise GanbenchError(f"--devices {devices}: this machine has {len(gpus)} GPU(s)")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != devices:
            raise GanbenchError(f"--devices {devices}: TensorFlow already runs in this process; "
                                "logical CPU devices must be set before") from None
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])


def replica_sum(x):
    """The sum of x over the replicas (differentiable: the gradient is the sum of the gradients)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, x)


def replica_mean(values):
    """The mean of each of `values` (a nested structure) over the replicas."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, values)


class Collective:
    """The decisions the processes take together, outside the step: an elementwise maximum of
    Python floats and a barrier. Each replica writes its values into its own row of a zero
    [world size, k] matrix; the all-reduced sum is every replica's values (an all-gather)."""

    def __init__(self, strategy, world: World):
        self.strategy, self.world = strategy, world

        @tf.function
        def gathered(row):
            return strategy.run(lambda r: replica_sum(tf.identity(r)), args=(row,))

        self._gathered = gathered

    def max(self, values: list) -> list:
        rows = [[0.0] * len(values) for _ in range(self.world.size)]
        rows[self.world.rank] = list(values)
        return tf.reduce_max(self._gathered(tf.constant(rows, tf.float64)), axis=0).numpy().tolist()

    def barrier(self) -> None:
        self.max([0.0])

    def close(self, together: bool = False) -> None:
        """At a run's end: every worker arrives before any leaves (the strategy needs no teardown)."""
        if together:
            self.barrier()
