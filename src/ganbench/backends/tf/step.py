"""TensorFlow GAN: one training step (a tf.function graph), sampling, canonical state."""

import numpy as np
import tensorflow as tf

from ganbench.backends import resolve_mode
from ganbench.backends.tf import losses
from ganbench.backends.tf.nets import Network, shift
from ganbench.rng import mix32

NAME = "tf"
# The graph is the default: with TensorFlow's own SAME/VALID padding, `ganbench bench` measured it
# faster than XLA on both official-example presets and 6% slower on dcgan (benchmarks/README.md).
DEFAULT_MODE = "graph"
OPTIONS = "NHWC tensors; ganbench's Adam inside the step's graph"
MODES = {
    "eager": "TensorFlow eager (no tf.function)",
    "graph": "tf.function graph, jit_compile=False (no XLA)",
    "compiled": "tf.function, jit_compile=True (XLA)",
}


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
        self.lr = tf.Variable(lr, dtype=tf.float64, trainable=False)  # a variable: decay retraces nothing
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
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
            # torch's lerp_(g, w) switches formula at w = 0.5
            m.assign(m + w * (g - m) if w < 0.5 else g - (g - m) * (1.0 - w))
            v.assign(self.beta2 * v + (1.0 - self.beta2) * g * g)
            var.assign_sub(step_size * (m / (tf.sqrt(v) / bc2_sqrt + eps)))


class GAN:
    """Same interface and semantics as ganbench.backends.torch.step.GAN."""

    backend = NAME

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default"):
        self.spec, self.hp, self.loss = spec, hp, hp.loss
        self.mode = resolve_mode(NAME, mode, MODES, DEFAULT_MODE)
        # float32 means float32 on a GPU too: TensorFlow enables TF32 matmuls/convs by default.
        tf.config.experimental.enable_tensor_float_32_execution(False)
        self.dtype = tf.as_dtype(dtype)
        self.nets = {key: Network(net, self.dtype) for key, net in spec.networks.items()}
        for key, net in self.nets.items():
            net.load_canonical(state["nets"][key])
        self.G, self.D = self.nets["G"], self.nets["D"]
        self._start_step(None)  # the dropout keying of the D calls being traced
        lrs = {"G": hp.lr_g, "D": hp.lr_d}
        self.opts = {
            key: Adam(net.trainables, lrs[key], hp.beta1, hp.beta2, hp.eps, self.dtype, hp.eps_form)
            for key, net in self.nets.items()
        }
        if state.get("opt"):
            self._load_opt(state["opt"])
        if self.mode == "eager":
            self._step_fn = self._train_step
        else:
            self._step_fn = tf.function(self._train_step, jit_compile=self.mode == "compiled")
        self._generate_fn = tf.function(self.G.__call__)
        self._discriminate_fn = tf.function(self.D.__call__)

    # -- training ---------------------------------------------------------------------------
    def _start_step(self, dropout_key) -> None:
        """Key this step's D calls (rank 0, 1, ...) by its dropout key (an int64 tensor or None)."""
        self._step_key, self._d_calls = dropout_key, 0

    def _d_pair(self, real, fake) -> tuple:
        """D's logits on a real and a fake batch: two calls (BatchNorm sees each batch alone)."""
        return self._call_D(real), self._call_D(fake)

    def _call_D(self, images):
        """A training forward of D; its dropout masks are keyed by the step and the call's rank
        (counted while tracing: the graph holds every call)."""
        call_key = None
        if self._step_key is not None:
            call_key = mix32(self._step_key ^ self._d_calls, shift)
            self._d_calls += 1
        return self.D(images, True, call_key)

    def _d_update(self, real, fake, alpha):
        fake = tf.stop_gradient(fake)
        out = {}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.D.trainables)
            loss = losses.d_loss(self.loss, *self._d_pair(real, fake))
            if self.loss == "wgan-gp":
                out["gp"] = losses.gradient_penalty(self.D, real, fake, alpha)
                loss = loss + self.hp.gp_lambda * out["gp"]
        self.opts["D"].apply(tape.gradient(loss, self.D.trainables), self.D.trainables)
        return {"d_loss": loss, **out}

    def _train_step(self, reals, z, z_g, alphas, dropout_key):
        self._start_step(dropout_key)
        if self.hp.update == "simultaneous":
            return self._simultaneous_step(reals[0], z[0])
        n_dis = reals.shape[0]
        reuse = z_g is None
        for d in range(n_dis - 1 if reuse else n_dis):
            d_out = self._d_update(reals[d], self.G(z[d], True), None if alphas is None else alphas[d])
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.G.trainables)
            if reuse:
                fake = self.G(z[n_dis - 1], True)
                with tape.stop_recording():
                    d_out = self._d_update(reals[n_dis - 1], fake, None if alphas is None else alphas[n_dis - 1])
            else:
                fake = self.G(z_g, True)
            g_loss = losses.g_loss(self.loss, self._call_D(fake))
        self.opts["G"].apply(tape.gradient(g_loss, self.G.trainables), self.G.trainables)
        return {**d_out, "g_loss": g_loss}

    def _simultaneous_step(self, real, z):
        """TensorFlow's DCGAN tutorial: G and D gradients from one forward, both applied."""
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.G(z, True)
            d_real, d_fake = self._d_pair(real, fake)
            g_loss, d_loss = losses.g_loss(self.loss, d_fake), losses.d_loss(self.loss, d_real, d_fake)
        g_grads = g_tape.gradient(g_loss, self.G.trainables)
        d_grads = d_tape.gradient(d_loss, self.D.trainables)
        self.opts["G"].apply(g_grads, self.G.trainables)
        self.opts["D"].apply(d_grads, self.D.trainables)
        return {"d_loss": d_loss, "g_loss": g_loss}

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (linear decay), in float64 as torch's Python floats."""
        for opt in self.opts.values():
            opt.lr.assign(opt.base_lr * factor)

    def train_step(self, reals: np.ndarray, z: np.ndarray, z_g: np.ndarray | None = None,
                   alphas: np.ndarray | None = None, dropout_key: int | None = None) -> dict:
        """See the torch backend: n_dis D updates, then a G update on z_g's batch, or on the last
        D update's fake batch when z_g is None; or one simultaneous update."""
        args = [tf.constant(a, self.dtype) if a is not None else None for a in (reals, z, z_g, alphas)]
        key = None if dropout_key is None else tf.constant(dropout_key, tf.int64)
        return {name: float(value) for name, value in self._step_fn(*args, key).items()}

    # -- benchmark breakdown ----------------------------------------------------------------
    def phase_fns(self, reals: np.ndarray, z: np.ndarray, dropout_key: int | None = None, **_) -> dict:
        """See the torch backend; each part is its own tf.function in graph and compiled modes."""
        real, z = tf.constant(reals[0], self.dtype), tf.constant(z[0], self.dtype)
        self._start_step(None if dropout_key is None else tf.constant(dropout_key, tf.int64))
        fake = self.G(z, True)

        def d_forward_backward():
            with tf.GradientTape() as tape:
                loss = losses.d_loss(self.loss, *self._d_pair(real, fake))
            return tape.gradient(loss, self.D.trainables)

        def g_update():
            with tf.GradientTape() as tape:
                loss = losses.g_loss(self.loss, self._call_D(self.G(z, True)))
            return tape.gradient(loss, self.G.trainables)

        def optimiser(d_grads, g_grads):
            self.opts["D"].apply(d_grads, self.D.trainables)
            self.opts["G"].apply(g_grads, self.G.trainables)
            return self.opts["G"].step

        compile_ = (lambda f: f) if self.mode == "eager" else (
            lambda f: tf.function(f, jit_compile=self.mode == "compiled"))
        parts = {"G forward": compile_(lambda: self.G(z, True)), "D forward/backward": compile_(d_forward_backward),
                 "G update": compile_(g_update)}
        d_grads, g_grads = parts["D forward/backward"](), parts["G update"]()
        apply = compile_(optimiser)
        parts["optimiser"] = lambda: apply(d_grads, g_grads)
        # .numpy() on every output waits for the work: the host sync
        return {name: (lambda fn=fn: tf.nest.map_structure(lambda t: t.numpy(), fn())) for name, fn in parts.items()}

    # -- inference --------------------------------------------------------------------------
    def generate(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        return self._generate_fn(tf.constant(z, self.dtype), training).numpy()

    def discriminate(self, images: np.ndarray, training: bool = False) -> np.ndarray:
        return tf.reshape(self._discriminate_fn(tf.constant(images, self.dtype), training), [-1]).numpy()

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict:
        return {
            "nets": {key: net.export_canonical() for key, net in self.nets.items()},
            "opt": {key: self._export_opt(key) for key in self.nets},
        }

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
