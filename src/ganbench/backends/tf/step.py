"""TensorFlow GAN: one training step (a tf.function graph), sampling, canonical state."""

import contextlib
from functools import partial

import numpy as np
import tensorflow as tf

from ganbench.backends import resolve_mode
from ganbench.backends.keying import DCallKeying, per_update
from ganbench.backends.tf import losses
from ganbench.backends.tf.dropout import shift
from ganbench.backends.tf.nets import BatchNorm, Network, variable
from ganbench.distributed import SINGLE, SingleProcess, World, shard_inputs
from ganbench.errors import GanbenchError
from ganbench.ema import sampling_generator, sn_vectors, standing_momentum
from ganbench.losses import ortho_regularised
from ganbench.precision import compute_dtype, initial_loss_scales, next_loss_scale, scales_loss
from ganbench.rng import mix32
from ganbench.step_inputs import STEP_PARTS, StepInputs

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


class GAN(DCallKeying):
    """Same interface and semantics as ganbench.backends.torch.step.GAN."""

    backend = NAME

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default", world: World = SINGLE):
        self.spec, self.hp, self.loss, self.world = spec, hp, hp.loss, world
        self.mode = resolve_mode(NAME, mode, MODES, DEFAULT_MODE)
        self.strategy, self.collective, self.devices = None, SingleProcess(), hp.devices
        if world.distributed or self.devices > 1:
            self._start_strategy()
        # under a local MirroredStrategy the state is created in its scope: mirrored on each device
        with self.strategy.scope() if self.devices > 1 else contextlib.nullcontext():
            self._build_state(spec, state, hp, dtype)
        if self.mode == "eager":
            self._step_fn = self._train_step
        elif self.strategy is not None:
            self._step_fn = tf.function(lambda *args: self.strategy.run(self._replica_step, args=args))
        else:
            self._step_fn = tf.function(self._train_step, jit_compile=self.mode == "compiled")
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

    def _build_state(self, spec, state: dict, hp, dtype: str) -> None:
        """The networks (and G_ema), loss scales and Adam states, loaded from `state`."""
        self.dtype = tf.as_dtype(dtype)
        self.nets = {key: Network(net, self.dtype) for key, net in spec.networks.items()}
        for key, net in self.nets.items():
            net.load_canonical(state["nets"][key])
        self.G, self.D = self.nets["G"], self.nets["D"]
        self.G_ema = None
        if hp.ema_decay:  # see the torch backend
            self.G_ema = Network(spec.generator, self.dtype)
            self.G_ema.load_canonical(state["nets"].get("G_ema", state["nets"]["G"]))
        self.use_ema = True
        low = compute_dtype(hp.precision)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                net.set_compute_dtype(None if low is None else tf.as_dtype(low))
        self.loss_scales = None  # fp16: {network: {"scale", "tracker", "skipped"}} as variables
        if scales_loss(hp.precision):
            self.loss_scales = {key: {name: variable(value, dtype=tf.float64 if name == "scale" else tf.int64,
                                                     trainable=False) for name, value in scale.items()}
                                for key, scale in initial_loss_scales(state).items()}
        self._start_step(None)  # the dropout keying of the D calls being traced
        lrs = {"G": hp.lr_g, "D": hp.lr_d}
        self.opts = {
            key: Adam(net.trainables, lrs[key], hp.beta1, hp.beta2, hp.eps, self.dtype, hp.eps_form)
            for key, net in self.nets.items()
        }
        if state.get("opt"):
            self._load_opt(state["opt"])

    # -- training ---------------------------------------------------------------------------
    @staticmethod
    def _mix(x):
        return mix32(x, shift)

    def _d_forward(self, images, context: dict):
        return self.D(images, True, context)

    @staticmethod
    def _key(dropout_key: int | None):
        return None if dropout_key is None else tf.constant(dropout_key, tf.int64)

    def _g_forward(self, net, z, labels, training: bool = True):
        return net(z, training, None if labels is None else {"labels": labels})

    def _d_update(self, real, fake, alpha, real_labels=None, fake_labels=None):
        fake = tf.stop_gradient(fake)
        out = {}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.D.trainables)
            loss = losses.d_loss(self.loss, *self._d_pair(real, fake, real_labels, fake_labels))
            if self.loss == "wgan-gp":
                critic = lambda x: self._call_D(x, real_labels)  # noqa: E731
                scale = self.loss_scales["D"]["scale"] if self.loss_scales else None
                out["gp"] = losses.gradient_penalty(critic, real, fake, alpha, scale)
                loss = loss + self.hp.gp_lambda * out["gp"]
            scaled = self._scaled("D", loss)
        self._apply("D", tape.gradient(scaled, self.D.trainables))
        return {"d_loss": loss, **out}

    def _scaled(self, key: str, loss):
        """The loss multiplied by the network's loss scale under fp16 (inside the tape)."""
        return loss * tf.cast(self.loss_scales[key]["scale"], loss.dtype) if self.loss_scales else loss

    def _apply(self, key: str, grads) -> None:
        """The network's Adam step (and G's EMA); under fp16 on the gradients divided by the loss
        scale, skipped unless all are finite, the scale updated by GradScaler's rule (see the torch
        backend; ganbench.precision)."""
        step = (lambda g: self.opts["D"].apply(g, self.D.trainables)) if key == "D" else self._apply_G
        if self.strategy is not None:  # every replica applies the replicas' mean gradient
            from ganbench.backends.tf.distributed import replica_mean

            grads = replica_mean([tf.convert_to_tensor(g) for g in grads])
        if not self.loss_scales:
            return step(grads)
        state = self.loss_scales[key]
        inverse = tf.cast(1.0 / state["scale"], self.dtype)
        grads = [tf.convert_to_tensor(g) * inverse for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        scale, tracker = next_loss_scale(state["scale"].read_value(), state["tracker"].read_value(), finite, tf.where)
        tf.cond(finite, lambda: step(grads) or tf.constant(True), lambda: tf.constant(False))
        state["scale"].assign(scale)
        state["tracker"].assign(tracker)
        state["skipped"].assign_add(tf.cast(tf.logical_not(finite), tf.int64))

    def _scale_log(self) -> dict:
        if not self.loss_scales:
            return {}
        return {"loss_scale_d": self.loss_scales["D"]["scale"].read_value(),
                "loss_scale_g": self.loss_scales["G"]["scale"].read_value(),
                "skipped_updates": self.loss_scales["D"]["skipped"] + self.loss_scales["G"]["skipped"]}

    def _replica_step(self, *args):
        """One replica's step (under strategy.run): BatchNorm over the global batch while traced
        (hp.sync_bn), the losses' mean over the replicas out."""
        from ganbench.backends.tf.distributed import replica_mean

        BatchNorm.sync.replicas = self.strategy.num_replicas_in_sync if self.hp.sync_bn else 1
        try:
            out = self._train_step(*args)
        finally:
            BatchNorm.sync.replicas = 1
        return replica_mean({name: tf.cast(value, tf.float64) for name, value in out.items()})

    def _replica_index(self) -> int:
        """This replica's place among all replicas: its rows of the global batch."""
        if self.devices == 1:
            return self.world.rank
        return tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group)

    def _train_step(self, reals, z, z_g, alphas, dropout_key, labels, fake_labels, g_labels):
        self._start_step(dropout_key, self._replica_index())
        labels, fake_labels, alphas = per_update(labels), per_update(fake_labels), per_update(alphas)
        if self.hp.update == "simultaneous":
            return self._simultaneous_step(reals[0], z[0], labels[0], fake_labels[0])
        n_dis = reals.shape[0]
        reuse, last = z_g is None, n_dis - 1
        for d in range(last if reuse else n_dis):
            fake = self._g_forward(self.G, z[d], fake_labels[d])
            d_out = self._d_update(reals[d], fake, alphas[d], labels[d], fake_labels[d])
        if reuse:
            last_d_update = partial(self._d_update, reals[last], alpha=alphas[last], real_labels=labels[last],
                                    fake_labels=fake_labels[last])
            return {**self._g_update(z[last], fake_labels[last], last_d_update), **self._scale_log()}
        return {**d_out, **self._g_update(z_g, g_labels), **self._scale_log()}

    def _g_update(self, z, labels, d_update=None) -> dict:
        """G's forward on z (recorded), its loss through D (plus the orthogonal penalty), Adam and
        EMA. d_update(fake): the D update that these fakes also serve when the G update reuses
        them (pytorch/examples dcgan), run unrecorded between G's forward and D's call."""
        d_out = {}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.G.trainables)
            fake = self._g_forward(self.G, z, labels)
            if d_update is not None:
                with tape.stop_recording():
                    d_out = d_update(fake)
            g_loss = losses.g_loss(self.loss, self._call_D(fake, labels))
            regularised, ortho = self._with_ortho(g_loss)
            scaled = self._scaled("G", regularised)
        self._apply("G", tape.gradient(scaled, self.G.trainables))
        return {**d_out, "g_loss": g_loss, **ortho}

    def _with_ortho(self, g_loss) -> tuple:
        """See the torch backend."""
        if not self.hp.ortho_reg:
            return g_loss, {}
        penalty = self.ortho_penalty()
        strength = tf.cast(tf.constant(self.hp.ortho_reg, tf.float64), self.dtype)  # not rounded to float32 first
        return g_loss + strength * penalty, {"ortho": penalty}

    def ortho_penalty(self):
        return losses.ortho_penalty([self.G.canonical_weight(name) for name in ortho_regularised(self.spec.generator)])

    def _apply_G(self, grads) -> None:
        """G's Adam step, then its EMA: every weight and buffer of G_ema moves toward G's with
        ema.ema_weight of G's step count (written as tensors here, for the graph)."""
        self.opts["G"].apply(grads, self.G.trainables)
        if self.G_ema is None:
            return
        copying = self.opts["G"].step <= self.hp.ema_start
        decay = tf.constant(self.hp.ema_decay, tf.float64)  # a Python float would become float32 first
        weight = tf.cast(tf.where(copying, tf.zeros_like(decay), decay), self.dtype)
        for name, var in self.G_ema.variables_by_name.items():
            var.assign(weight * var + (1.0 - weight) * self.G.variables_by_name[name])
        for name, eps in sn_vectors(self.spec.generator).items():
            vector = self.G_ema.variables_by_name[name]
            vector.assign(vector / tf.maximum(tf.norm(vector), eps))

    def _simultaneous_step(self, real, z, labels=None, fake_labels=None):
        """TensorFlow's DCGAN tutorial: G and D gradients from one forward, both applied."""
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self._g_forward(self.G, z, fake_labels)
            d_real, d_fake = self._d_pair(real, fake, labels, fake_labels)
            g_loss, d_loss = losses.g_loss(self.loss, d_fake), losses.d_loss(self.loss, d_real, d_fake)
            regularised, ortho = self._with_ortho(g_loss)
            g_scaled, d_scaled = self._scaled("G", regularised), self._scaled("D", d_loss)
        g_grads = g_tape.gradient(g_scaled, self.G.trainables)
        d_grads = d_tape.gradient(d_scaled, self.D.trainables)
        self._apply("G", g_grads)
        self._apply("D", d_grads)
        return {"d_loss": d_loss, "g_loss": g_loss, **ortho, **self._scale_log()}

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (linear decay), in float64 as torch's Python floats."""
        for opt in self.opts.values():
            opt.lr.assign(opt.base_lr * factor)

    def _step_args(self, inputs: StepInputs) -> list:
        """reals, z, z_g, alphas as tensors (None where the step has none)."""
        return [None if a is None else tf.constant(a, self.dtype) for a in (inputs.reals, inputs.z, inputs.z_g, inputs.alphas)]

    def train_step(self, inputs: StepInputs) -> dict:
        """See the torch backend: n_dis D updates, then a G update on z_g's batch, or on the last
        D update's fake batch when z_g is None; or one simultaneous update."""
        if self.devices > 1:
            return self._local_replicas_step(inputs)
        out = self._step_fn(*self._tensor_args(inputs))
        return {name: value.numpy().item() for name, value in out.items()}

    def _tensor_args(self, inputs: StepInputs) -> list:
        """The arguments of _train_step: reals, z, z_g, alphas, dropout key, labels, fake labels,
        G labels (None where the step has none)."""
        labels = [self._labels(a) for a in (inputs.labels, inputs.fake_labels, inputs.g_labels)]
        return [*self._step_args(inputs), self._key(inputs.dropout_key), *labels]

    def _local_replicas_step(self, inputs: StepInputs) -> dict:
        """MirroredStrategy: each local replica takes its rows of this process's inputs."""
        shards = [shard_inputs(inputs, World(i, self.devices)) for i in range(self.devices)]
        values = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tuple(self._tensor_args(shards[ctx.replica_id_in_sync_group])))
        out = self.strategy.experimental_local_results(self._step_fn(*values))[0]
        return {name: value.numpy().item() for name, value in out.items()}

    @staticmethod
    def _labels(labels):
        return None if labels is None else tf.constant(labels, tf.int64)

    # -- benchmark breakdown ----------------------------------------------------------------
    def phase_fns(self, inputs: StepInputs) -> dict:
        """See the torch backend; each part is its own tf.function in graph and compiled modes, and
        returns numpy (the host sync)."""
        if self.hp.update == "simultaneous":
            return {}  # one forward of G and D serves both updates: no parts that run apart
        self._start_step(self._key(inputs.dropout_key))
        reals, z, z_g, alphas = self._step_args(inputs)
        labels, fake_labels, g_labels = (self._labels(a) for a in (inputs.labels, inputs.fake_labels, inputs.g_labels))
        labels, fake_labels, alphas = per_update(labels), per_update(fake_labels), per_update(alphas)
        reuse, last = z_g is None, inputs.n_dis - 1
        compile_ = (lambda f: f) if self.mode == "eager" else (
            lambda f: tf.function(f, jit_compile=self.mode == "compiled"))
        fakes = [None] * inputs.n_dis
        if reuse:  # see the torch backend
            fakes[last] = self._g_forward(self.G, z[last], fake_labels[last])

        @compile_
        def d_fakes():
            return [self._g_forward(self.G, z[d], fake_labels[d]) for d in range(last if reuse else inputs.n_dis)]

        @compile_
        def d_updates(fakes):
            return [self._d_update(reals[d], fakes[d], alphas[d], labels[d], fake_labels[d])
                    for d in range(inputs.n_dis)]

        @compile_
        def g_update():
            return self._g_update(z[last], fake_labels[last]) if reuse else self._g_update(z_g, g_labels)

        def run_d_fakes():
            made = d_fakes()
            fakes[:len(made)] = made
            return made

        parts = (run_d_fakes, lambda: d_updates(fakes), g_update)
        # .numpy() on every output waits for the work: the host sync
        return {name: (lambda fn=fn: tf.nest.map_structure(lambda t: t.numpy(), fn()))
                for name, fn in zip(STEP_PARTS, parts)}

    # -- inference --------------------------------------------------------------------------
    def generate(self, z: np.ndarray, training: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
        net = sampling_generator(self)
        return self._generate_fns[net](tf.constant(z, self.dtype), self._labels(labels), training).numpy()

    def standing_stats(self, batches) -> None:
        """See the torch backend (eager forwards: the momentum changes from batch to batch)."""
        net = sampling_generator(self)
        norms = [layer for layer in net.layers if isinstance(layer, BatchNorm)]
        try:
            for k, (z, labels) in enumerate(batches):
                for layer in norms:
                    layer.momentum = standing_momentum(k)
                self._g_forward(net, tf.constant(z, self.dtype), self._labels(labels))
        finally:
            for layer in norms:
                layer.momentum = layer.spec.momentum

    def discriminate(self, images: np.ndarray, training: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
        context = None if labels is None else {"labels": self._labels(labels)}
        return tf.reshape(self._discriminate_fn(tf.constant(images, self.dtype), training, context), [-1]).numpy()

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict:
        nets = {key: net.export_canonical() for key, net in self.nets.items()}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema.export_canonical()
        state = {"nets": nets, "opt": {key: self._export_opt(key) for key in self.nets}}
        if self.loss_scales:
            state["loss_scales"] = {key: {name: var.numpy().item() for name, var in scale.items()}
                                    for key, scale in self.loss_scales.items()}
        return state

    def _export_opt(self, key: str) -> dict:
        net, opt = self.nets[key], self.opts[key]
        out = {"step": int(opt.step.numpy()), "exp_avg": {}, "exp_avg_sq": {}}
        for name, m, v in zip(net.trainable_names, opt.m, opt.v):
            out["exp_avg"][name] = net.to_canonical(name, m.numpy())
            out["exp_avg_sq"][name] = net.to_canonical(name, v.numpy())
        return out

    def _load_opt(self, opt_state: dict) -> None:
        for key, saved in opt_state.items():
            net, opt = self.nets[key], self.opts[key]
            opt.step.assign(saved["step"])
            for name, m, v in zip(net.trainable_names, opt.m, opt.v):
                m.assign(net.to_native(name, saved["exp_avg"][name]).astype(m.dtype.as_numpy_dtype))
                v.assign(net.to_native(name, saved["exp_avg_sq"][name]).astype(v.dtype.as_numpy_dtype))
