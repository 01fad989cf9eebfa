"""TensorFlow GAN: the engine of ganbench.step's training step (traced into a tf.function), sampling,
and the state's tensors."""

import contextlib
import threading
from functools import partial

import numpy as np
import tensorflow as tf

from ganbench.backends import resolve_mode
from ganbench.backends.tf import losses
from ganbench.backends.tf.dropout import shift
from ganbench.backends.tf.nets import BatchNorm, Network, variable
from ganbench.distributed import SINGLE, SingleProcess, World, shard_inputs
from ganbench.errors import GanbenchError
from ganbench.precision import scales_loss
from ganbench.rng import mix32
from ganbench.step import GANStep
from ganbench.step_inputs import StepInputs

NAME = "tf"
# The graph is the default: with TensorFlow's own SAME/VALID padding, `ganbench bench` measured it
# faster than XLA on both official-example presets and 6% slower on dcgan (benchmarks/README.md).
DEFAULT_MODE = "graph"
OPTIONS = "NHWC tensors; ganbench's Adam inside the step's graph"
# what a collective raises when another worker dies or hangs up
COLLECTIVE_ERRORS = (tf.errors.OpError,)
MODES = {
    "eager": "TensorFlow eager (no tf.function)",
    "graph": "tf.function graph, jit_compile=False (no XLA)",
    "compiled": "tf.function, jit_compile=True (XLA)",
}


# Process-wide, set once when the backend is imported: float32 means float32 on a GPU too
# (TensorFlow enables TF32 matmuls and convolutions by default).
tf.config.experimental.enable_tensor_float_32_execution(False)


def framework_version() -> str:
    return tf.__version__


class Adam(tf.Module):
    """Adam exactly as torch.optim.Adam computes it (single-tensor path): eps is added to the
    bias-corrected sqrt(v). eps_form "keras" adds it to the raw sqrt(v) as Keras' Adam does,
    computed as torch's form with eps / sqrt(1 - beta2^t) (what the torch backend sets too)."""

    def __init__(self, variables, lr, beta1, beta2, eps, dtype, eps_form="torch"):
        super().__init__()
        self.beta1, self.beta2, self.eps, self.eps_form = beta1, beta2, eps, eps_form
        self.base_lr = lr
        self.lr = variable(lr, dtype=tf.float64, trainable=False)  # a variable: decay retraces nothing
        self.step = variable(0, dtype=tf.int64, trainable=False)
        self.m = [variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.dtype = dtype

    def apply(self, grads, variables):
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float64)  # torch computes the corrections in Python doubles
        step_size = tf.cast(self.lr / (1.0 - self.beta1**t), self.dtype)  # float64, as torch's Python floats
        bc2_sqrt = tf.sqrt(1.0 - self.beta2**t)
        eps = tf.constant(self.eps, tf.float64)  # not tf.cast(float): that would round it to float32 first
        eps = tf.cast(eps / bc2_sqrt if self.eps_form == "keras" else eps, self.dtype)
        bc2_sqrt = tf.cast(bc2_sqrt, self.dtype)
        w = 1.0 - self.beta1
        for g, var, m, v in zip(grads, variables, self.m, self.v):
            g = tf.convert_to_tensor(g)  # an embedding's gradient arrives as IndexedSlices: dense, as torch's
            # torch's lerp_(g, w) switches formula at w = 0.5
            m.assign(m + w * (g - m) if w < 0.5 else g - (g - m) * (1.0 - w))
            v.assign(self.beta2 * v + (1.0 - self.beta2) * g * g)
            var.assign_sub(step_size * (m / (tf.sqrt(v) / bc2_sqrt + eps)))


class GAN(GANStep):
    """Same interface and semantics as ganbench.backends.torch.step.GAN."""

    backend = NAME
    losses = losses

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default", world: World = SINGLE):
        self.mode = resolve_mode(NAME, mode, MODES, DEFAULT_MODE)
        self.hp, self.world, self.dtype = hp, world, tf.as_dtype(dtype)
        self.strategy, self.collective, self.devices = None, SingleProcess(), hp.devices
        self._tapes = threading.local()  # the tape being recorded, per tracing thread
        if world.distributed or self.devices > 1:
            self._start_strategy()
        # under a local MirroredStrategy the state is created in its scope: mirrored on each device
        with self.strategy.scope() if self.devices > 1 else contextlib.nullcontext():
            self._build(spec, state, hp, world)
        if self.mode == "eager":
            self._step_fn = self._local_step
        elif self.strategy is not None:
            self._step_fn = tf.function(lambda t: self.strategy.run(self._replica_step, args=(t,)))
        else:
            self._step_fn = tf.function(self._local_step, jit_compile=self.mode == "compiled")
        self._generate_fns = {net: tf.function(partial(self._g_forward, net)) for net in (self.G, self.G_ema)
                              if net is not None}
        self._discriminate_fn = tf.function(self.D.__call__)

    def _start_strategy(self) -> None:
        """tf.distribute: MultiWorkerMirroredStrategy across the processes of TF_CONFIG (one replica
        each), or MirroredStrategy across `devices` local devices in one process."""
        from ganbench.backends.tf.distributed import Collective, local_strategy, strategy_for

        if self.mode != "graph":
            raise GanbenchError(f"the tf backend trains data-parallel in graph mode only, not {self.mode!r}")
        if self.world.distributed and self.devices > 1:
            raise GanbenchError("one replica per process under TF_CONFIG: drop --devices, or start a worker per device")
        if self.devices > 1 and scales_loss(self.hp.precision):
            raise GanbenchError("fp16 with --devices: its skipped updates are conditional writes, which "
                                "MirroredStrategy cannot synchronise (use bf16, or a process per device)")
        if self.world.distributed:
            self.strategy = strategy_for(self.world)
            self.collective = Collective(self.strategy, self.world)
        else:
            self.strategy = local_strategy(self.devices)

    # -- the engine of ganbench.step: building ----------------------------------------------
    def _network(self, net, arrays: dict, training: bool = True) -> Network:
        network = Network(net, self.dtype)
        network.load_canonical(arrays)
        return network

    @staticmethod
    def _set_compute_dtype(net, dtype: str | None) -> None:
        net.set_compute_dtype(None if dtype is None else tf.as_dtype(dtype))

    def _optimiser(self, key: str) -> Adam:
        hp = self.hp
        return Adam(self.nets[key].trainables, self.base_lrs[key], hp.beta1, hp.beta2, hp.eps, self.dtype, hp.eps_form)

    # -- training ---------------------------------------------------------------------------
    def train_step(self, inputs: StepInputs) -> dict:
        """See the torch backend: n_dis D updates, then a G update on z_g's batch, or on the last
        D update's fake batch when z_g is None; or one simultaneous update."""
        if self.devices > 1:
            return self._local_replicas_step(inputs)
        out = self._step_fn(self._step_tensors(inputs))
        return {name: self._python(value) for name, value in out.items()}

    def _local_replicas_step(self, inputs: StepInputs) -> dict:
        """MirroredStrategy: each local replica takes its rows of this process's inputs."""
        shards = [shard_inputs(inputs, World(i, self.devices)) for i in range(self.devices)]
        values = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: self._step_tensors(shards[ctx.replica_id_in_sync_group]))
        out = self.strategy.experimental_local_results(self._step_fn(values))[0]
        return {name: self._python(value) for name, value in out.items()}

    def _replica_step(self, t: dict):
        """One replica's step (under strategy.run): BatchNorm over the global batch while traced
        (hp.sync_bn), the losses' mean over the replicas out."""
        from ganbench.backends.tf.distributed import replica_mean

        BatchNorm.sync.replicas = self.strategy.num_replicas_in_sync if self.hp.sync_bn else 1
        try:
            out = self._local_step(t)
        finally:
            BatchNorm.sync.replicas = 1
        return replica_mean({name: tf.cast(value, tf.float64) for name, value in out.items()})

    # -- the engine of ganbench.step: tensors ----------------------------------------------
    def _floats(self, array):
        return tf.constant(array, self.dtype)

    _images = _floats  # NHWC, as TensorFlow's networks take them

    @staticmethod
    def _labels(labels):
        return tf.constant(labels, tf.int64)

    @staticmethod
    def _key(key: int):
        return tf.constant(key, tf.int64)

    @staticmethod
    def _python(value):
        return value.numpy().item() if hasattr(value, "numpy") else value

    @staticmethod
    def _mix(x):
        return mix32(x, shift)

    def _shard(self) -> int:
        """This replica's place among all replicas: its rows of the global batch."""
        if self.devices == 1:
            return self.world.rank
        return tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group)

    # -- forwards and gradients --------------------------------------------------------------
    def _g_train(self, z, labels):
        return self._g_forward(self.G, z, labels)

    @staticmethod
    def _g_forward(net, z, labels, training: bool = True):
        return net(z, training, None if labels is None else {"labels": labels})

    def _d_forward(self, images, context: dict, penalty: bool):
        return self.D(images, True, context)

    def _gradients(self, keys: tuple, fn) -> tuple:
        """Each network's gradient of its loss, from a tape of its own watching its trainable
        variables (the simultaneous step records both from one forward)."""
        outer = getattr(self._tapes, "current", [])
        with contextlib.ExitStack() as stack:
            tapes = [stack.enter_context(tf.GradientTape(watch_accessed_variables=False)) for _ in keys]
            for key, tape in zip(keys, tapes):
                tape.watch(self.nets[key].trainables)
            self._tapes.current = tapes
            try:
                scaled, out = fn()
            finally:
                self._tapes.current = outer
        return {key: tape.gradient(scaled[key], self.nets[key].trainables) for key, tape in zip(keys, tapes)}, out

    def _unrecorded(self, fn):
        with contextlib.ExitStack() as stack:
            for tape in self._tapes.current:
                stack.enter_context(tape.stop_recording())
            return fn()

    @staticmethod
    def _no_grad():
        return contextlib.nullcontext()  # no tape is recording

    @staticmethod
    def _frozen_D():
        return contextlib.nullcontext()  # the tape watches G's variables only

    _stop_gradient = staticmethod(tf.stop_gradient)

    # -- numbers: tensors and variables, for the graph ---------------------------------------
    where = staticmethod(tf.where)

    @staticmethod
    def _cond(cond, fn) -> None:
        tf.cond(cond, lambda: fn() or tf.constant(True), lambda: tf.constant(False))

    def _exact(self, x: float):
        return tf.cast(tf.constant(x, tf.float64), self.dtype)  # not rounded to float32 on the way

    @staticmethod
    def _scalar_variable(value, integer: bool):
        return variable(value, dtype=tf.int64 if integer else tf.float64, trainable=False)

    @staticmethod
    def _read(value, like=None):
        value = value.read_value()
        return value if like is None else tf.cast(value, like.dtype)

    @staticmethod
    def _write(state: dict, name: str, value) -> None:
        state[name].assign(tf.cast(value, state[name].dtype))

    # -- updates -----------------------------------------------------------------------------
    def _all_reduce(self, key: str, grads: list) -> list:
        if self.strategy is None:
            return grads
        from ganbench.backends.tf.distributed import replica_mean

        return replica_mean([tf.convert_to_tensor(g) for g in grads])

    def _unscale(self, grads: list, scale) -> list:
        inverse = tf.cast(1.0 / scale, self.dtype)
        return [tf.convert_to_tensor(g) * inverse for g in grads]

    @staticmethod
    def _all_finite(grads: list):
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

    def _adam(self, key: str, grads: list) -> None:
        self.opts[key].apply(grads, self.nets[key].trainables)

    def _adam_steps(self, key: str):
        return self.opts[key].step

    def _set_lr(self, key: str, lr: float) -> None:
        self.opts[key].lr.assign(lr)

    def _ema_pairs(self) -> list:
        return [(var, self.G.variables_by_name[name]) for name, var in self.G_ema.variables_by_name.items()]

    @staticmethod
    def _lerp(ema, raw, weight) -> None:
        ema.assign(weight * ema + (1.0 - weight) * raw)

    def _ema_tensors(self, names: list) -> list:
        return [self.G_ema.variables_by_name[name] for name in names]

    @staticmethod
    def _normalise(vector, eps: float) -> None:
        vector.assign(vector / tf.maximum(tf.norm(vector), eps))

    def _weight_matrix(self, name: str):
        return self.G.canonical_weight(name)

    # -- parts and state ---------------------------------------------------------------------
    def _bench_part(self, fn):
        """fn as a part of the bench: its own tf.function in graph and compiled modes; .numpy() on
        every output waits for the work (the host sync)."""
        compiled = fn if self.mode == "eager" else tf.function(fn, jit_compile=self.mode == "compiled")

        def run(*args):
            out = compiled(*args)
            tf.nest.map_structure(lambda t: t.numpy(), out)
            return out
        return run

    def _export_net(self, key: str) -> dict:
        return (self.G_ema if key == "G_ema" else self.nets[key]).export_canonical()

    def _adam_slots(self, key: str) -> tuple:
        net, opt = self.nets[key], self.opts[key]
        return int(opt.step.numpy()), {name: (net.to_canonical(name, m.numpy()), net.to_canonical(name, v.numpy()))
                                       for name, m, v in zip(net.trainable_names, opt.m, opt.v)}

    def _set_adam_slots(self, key: str, step: int, moments: dict) -> None:
        net, opt = self.nets[key], self.opts[key]
        opt.step.assign(step)
        for name, m, v in zip(net.trainable_names, opt.m, opt.v):
            for slot, array in zip((m, v), moments[name]):
                slot.assign(net.to_native(name, array).astype(slot.dtype.as_numpy_dtype))

    # -- inference --------------------------------------------------------------------------
    def _sample(self, net, z, labels, training: bool) -> np.ndarray:
        return self._generate_fns[net](z, labels, training).numpy()

    def _logits(self, images, context, training: bool) -> np.ndarray:
        return tf.reshape(self._discriminate_fn(images, training, context), [-1]).numpy()

    @staticmethod
    def _batch_norms(net) -> list:
        return [layer for layer in net.layers if isinstance(layer, BatchNorm)]

    @staticmethod
    def _training_forwards(net):
        return contextlib.nullcontext()  # eager forwards with training=True: the momentum may change
