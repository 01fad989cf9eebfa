"""The GAN training step, written once over a backend's engine of primitives.

GANStep holds the algorithm: the alternating schedule (n_dis D updates, then one G update on a
fresh G batch or on the last D update's fakes), the simultaneous update, where the gradient
penalty and the orthogonal penalty enter, fp16's skip-and-scale, the EMA of G, the learning-rate
factor, the bench's parts of a step, standing statistics and the canonical state layout. A
backend's GAN subclasses it and supplies only the framework's primitives (the "engine" methods
named at the end of the class); TensorFlow traces `_local_step` inside its tf.function, torch
runs it eagerly (its networks' forwards compiled or not).

Every training call of D goes through `_call_D(images, call)`, whose DCall record carries that
call's inputs: its labels, its rows of StepInputs.transform_args, and whether it is the gradient
penalty's (differentiated twice). A transform of D's input (`d_transform`) is applied there, so
that it reaches every D call in every backend without a change to either.

D-call keying: each training call of D in a step gets a rank (0, 1, ... in call order: real, fake,
the penalty's interpolates, the G update's fakes) and reads the call key mix32(step key ^ rank),
which seeds its dropout masks; a model without dropout has no step key and reads none. A replica
of a data-parallel step passes its rank as "shard": its masks are the rows of the global batch's.
The keying state is per thread: TensorFlow's MirroredStrategy traces each local replica's step in
a thread of its own, interleaved with the others.
"""

import threading
from dataclasses import dataclass

from ganbench import augment, losses
from ganbench.ema import ema_weight, sampling_generator, sn_vectors, standing_momentum
from ganbench.precision import compute_dtype, initial_loss_scales, next_loss_scale, next_skipped, python_where, scales_loss
from ganbench.step_inputs import REAL, FAKE, PENALTY, STEP_PARTS, StepInputs


@dataclass(frozen=True)
class DCall:
    """One training call of D. labels: its batch's class labels (a conditional D); transform_args:
    its rows of the step's transform_args (None: D's input is not transformed); penalty: the
    gradient penalty's call on the interpolates, which is differentiated twice; consistency_args:
    bCR's T of its images (None: no consistency term), whose second call of D reuses this record."""

    labels: object = None
    transform_args: object = None
    penalty: bool = False
    consistency_args: object = None


class _NoneForEach:
    def __getitem__(self, index):
        return None


def optional(convert, value):
    """convert(value), or None for an input the step does not have."""
    return None if value is None else convert(value)


def per_update(batches):
    """A step input indexed by D update (or by D call): the [n_dis, ...] tensor, or None for each
    index when the step has no such input (no labels, no penalty weights, no transform)."""
    return _NoneForEach() if batches is None else batches


class GANStep:
    """The algorithm of a training step over `self`'s engine primitives (see the module docstring).
    The backend's constructor calls `_build` and adds what is its own (devices, compilation)."""

    # (ops, images, args) -> images: applied to D's input at every D call whose record has
    # transform_args; ops is the backend's losses.OPS (its arrays are NCHW in torch, NHWC in tf)
    d_transform = None

    def _build(self, spec, state: dict, hp, world) -> None:
        """The networks from the canonical `state` (G_ema from its G_ema, else a copy of G, in eval
        mode: it never trains, it is only averaged), their compute precision, fp16's loss scales
        and the Adam optimisers with the state's moments. `hp` needs lr_g, lr_d, beta1, beta2, eps,
        eps_form, loss, update, gp_lambda, ortho_reg, ema_decay, ema_start and precision (and may
        have diffaugment: its transform becomes d_transform)."""
        self.spec, self.hp, self.loss, self.world = spec, hp, hp.loss, world
        self.nets = {key: self._network(net, state["nets"][key]) for key, net in spec.networks.items()}
        self.G, self.D = self.nets["G"], self.nets["D"]
        self.G_ema = None
        if hp.ema_decay:
            self.G_ema = self._network(spec.generator, state["nets"].get("G_ema", state["nets"]["G"]), training=False)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                self._set_compute_dtype(net, compute_dtype(hp.precision))
        self.loss_scales = self._loss_scale_state(initial_loss_scales(state)) if scales_loss(hp.precision) else None
        self.lecam = None  # LeCam's moving averages of D's outputs and their update count: state, checkpointed
        if getattr(hp, "lecam", 0.0):
            saved = {"real": 0.0, "fake": 0.0, "updates": 0, **(state.get("lecam") or {})}
            self.lecam = {name: self._scalar_variable(value, integer=name == "updates") for name, value in saved.items()}
        self.use_ema = True  # sample from G_ema when there is one (sampling.load_generator may turn it off)
        policies = augment.parse_policy(getattr(hp, "diffaugment", ""))
        if policies:
            self.d_transform = augment.diffaugment(augment.Layout(policies, *spec.image_shape[:2]))
        self.consistency = augment.consistency_transform(*spec.image_shape[:2]) if getattr(hp, "cr", 0.0) else None
        self._start_step(None)
        self.base_lrs = {"G": hp.lr_g, "D": hp.lr_d}
        self.opts = {key: self._optimiser(key) for key in self.nets}
        if state.get("opt"):
            self._load_opt(state["opt"])

    # -- one training step ------------------------------------------------------------------
    def _local_step(self, t: dict) -> dict:
        """One step on this replica's tensors (`_step_tensors`): n_dis D updates then one G update
        (hp.update "alternating"), or one forward of G and D whose losses update both
        ("simultaneous"). Without z_g the G update reuses the fake batch of the last D update (as
        pytorch/examples dcgan does), scored by the updated D."""
        self._start_step(t["dropout_key"], self._shard())
        self._regularise = t["regularise"]  # a Python bool: TensorFlow traces a step of each kind
        alphas, fake_labels = per_update(t["alphas"]), per_update(t["fake_labels"])
        if self.hp.update == "simultaneous":
            return {**self._simultaneous_step(t["reals"][0], t["z"][0], fake_labels[0], self._d_calls(t, 0)),
                    **self._scale_log()}
        n_dis = t["reals"].shape[0]
        reuse, last = t["z_g"] is None, n_dis - 1
        d_out = {}
        for d in range(last if reuse else n_dis):
            with self._no_grad():
                fake = self._g_train(t["z"][d], fake_labels[d])
            d_out = self._d_update(t["reals"][d], fake, alphas[d], self._d_calls(t, d))
        if reuse:
            def last_d_update(fake):
                return self._d_update(t["reals"][last], fake, alphas[last], self._d_calls(t, last))
            g_out = self._g_update(t["z"][last], fake_labels[last], self._g_call(t), last_d_update,
                                   self._paired_reals(t))
        else:
            g_out = self._g_update(t["z_g"], t["g_labels"], self._g_call(t), paired=self._paired_reals(t))
        return {**d_out, **g_out, **self._scale_log()}

    def _d_update(self, real, fake, alpha, calls) -> dict:
        """D's loss on a real and a fake batch (plus WGAN-GP's penalty, or R1 on the reals and R2 on
        the fakes, gamma / 2 each, times K on every K-th step when lazy), its gradient and Adam."""
        fake = self._stop_gradient(fake)

        def loss():
            real_call, fake_call, penalty_call = calls
            d_real, d_fake = self._call_D(real, real_call), self._call_D(fake, fake_call)
            d_loss = losses.d_loss(self.losses.OPS, self.loss, d_real, d_fake)
            out = {}
            if self.consistency is not None:
                out["cr"] = self._consistency(real, d_real, real_call) + self._consistency(fake, d_fake, fake_call)
                d_loss = d_loss + self._exact(self.hp.cr) * out["cr"]
            if self.lecam is not None:
                ema_real, ema_fake = self._update_lecam(d_real, d_fake)
                out["lecam"] = losses.lecam_penalty(self.losses.OPS, d_real, d_fake, ema_real, ema_fake)
                d_loss = d_loss + self._exact(self.hp.lecam) * out["lecam"]
            scale = self._read(self.loss_scales["D"]["scale"]) if self.loss_scales else None
            critic = lambda x: self._call_D(x, penalty_call)  # noqa: E731
            if self.loss == "wgan-gp":
                out["gp"] = self.losses.gradient_penalty(critic, real, fake, alpha, scale)
                d_loss = d_loss + self.hp.gp_lambda * out["gp"]
            for name, images in (("r1", real), ("r2", fake)):
                gamma = getattr(self.hp, name, 0.0) * getattr(self.hp, "reg_every", 1)
                if gamma and self._regularise:
                    grads = self.losses.input_gradients(critic, images, scale)
                    out[name] = losses.zero_centred_penalty(self.losses.OPS, grads)
                    d_loss = d_loss + self._exact(gamma / 2) * out[name]
            return {"D": self._scaled("D", d_loss)}, {"d_loss": d_loss, **out}

        grads, out = self._gradients(("D",), loss)
        self._apply("D", grads["D"])
        return out

    def _consistency(self, images, logits, call: DCall):
        """bCR's term for one batch: D's output on the images against its output on their copies
        moved by the keyed T, the second call with the first one's record (labels, DiffAugment)."""
        moved = self.consistency(self.losses.OPS, images, call.consistency_args)
        return losses.consistency_penalty(self.losses.OPS, logits, self._call_D(moved, call))

    def _update_lecam(self, d_real, d_fake) -> tuple:
        """LeCam's moving averages of D's mean output on reals and on fakes, this update's included
        (the first update sets them), as the penalty reads them: in D's output dtype."""
        weight = self.where(self._read(self.lecam["updates"]) == 0, self._exact(0.0), self._exact(self.hp.lecam_decay))
        averages = []
        for name, logits in (("real", d_real), ("fake", d_fake)):
            mean = self._stop_gradient(self.losses.OPS.mean(logits))
            average = self._read(self.lecam[name], like=mean) * weight + mean * (1.0 - weight)
            self._write(self.lecam, name, average)
            averages.append(average)
        self._write(self.lecam, "updates", self._read(self.lecam["updates"]) + 1)
        return tuple(averages)

    def _g_update(self, z, labels, call: DCall, d_update=None, paired=None) -> dict:
        """G's forward on z, its loss through D (plus the orthogonal penalty), gradient, Adam and
        EMA. d_update(fake): the D update that these fakes also serve when the G update reuses
        them (pytorch/examples dcgan), run unrecorded between G's forward and D's call. paired:
        (reals, their D call) that a PAIRED loss scores beside the fakes."""

        def loss():
            fake = self._g_train(z, labels)
            d_out = {} if d_update is None else self._unrecorded(lambda: d_update(fake))
            with self._frozen_D():  # only dL/dfake is needed of D
                d_fake = self._call_D(fake, call)
                d_real = None if paired is None else self._stop_gradient(self._call_D(*paired))
                g_loss = losses.g_loss(self.losses.OPS, self.loss, d_fake, d_real)
            regularised, ortho = self._with_ortho(g_loss)
            return {"G": self._scaled("G", regularised)}, {**d_out, "g_loss": g_loss, **ortho}

        grads, out = self._gradients(("G",), loss)
        self._apply("G", grads["G"])
        return out

    def _simultaneous_step(self, real, z, fake_labels, calls) -> dict:
        """TensorFlow's DCGAN tutorial: one G forward and D on real and fake; G's gradient from
        its loss, D's from its own, both from that forward, both applied."""

        def loss():
            fake = self._g_train(z, fake_labels)
            d_real, d_fake = self._call_D(real, calls[REAL]), self._call_D(fake, calls[FAKE])
            d_loss, g_loss = losses.d_loss(self.losses.OPS, self.loss, d_real, d_fake), \
                losses.g_loss(self.losses.OPS, self.loss, d_fake, d_real)
            regularised, ortho = self._with_ortho(g_loss)
            return ({"G": self._scaled("G", regularised), "D": self._scaled("D", d_loss)},
                    {"d_loss": d_loss, "g_loss": g_loss, **ortho})

        grads, out = self._gradients(("G", "D"), loss)
        for key in ("G", "D"):
            self._apply(key, grads[key])
        return out

    def _with_ortho(self, g_loss) -> tuple:
        """(G's loss plus hp.ortho_reg times the orthogonal penalty, {"ortho": penalty} to log)."""
        if not self.hp.ortho_reg:
            return g_loss, {}
        penalty = self.ortho_penalty()
        return g_loss + self._exact(self.hp.ortho_reg) * penalty, {"ortho": penalty}

    def ortho_penalty(self):
        """losses.ortho_penalty over G's weights that losses.ortho_regularised names, as (out, -1)
        matrices."""
        return losses.ortho_penalty(self.losses.OPS, [self._weight_matrix(name)
                                                      for name in losses.ortho_regularised(self.spec.generator)])

    # -- the one D-call seam and its keying -------------------------------------------------
    def _d_calls(self, t: dict, d: int) -> tuple:
        """The records of D update d's calls: (real, fake, penalty)."""
        labels, fake_labels = per_update(t["labels"])[d], per_update(t["fake_labels"])[d]
        args, moves = (per_update(per_update(t[name])[d]) for name in ("transform_args", "consistency_args"))
        return (DCall(labels, args[REAL], consistency_args=moves[REAL]),
                DCall(fake_labels, args[FAKE], consistency_args=moves[FAKE]), DCall(labels, args[PENALTY], penalty=True))

    def _paired_reals(self, t: dict):
        """A PAIRED loss's reals for the G update: the last D update's, with its real call's record
        (labels, transform); else None."""
        if self.loss not in losses.PAIRED:
            return None
        last = t["reals"].shape[0] - 1
        return t["reals"][last], self._d_calls(t, last)[REAL]

    @staticmethod
    def _g_call(t: dict) -> DCall:
        """The record of the G update's D call: its fakes' labels (z_g's, else the last D update's)."""
        labels = per_update(t["fake_labels"])[-1] if t["z_g"] is None else t["g_labels"]
        return DCall(labels, t["g_transform_args"])

    def _call_D(self, images, call: DCall):
        """Every training call of D: keyed, its input transformed when the record says so."""
        context = self._d_context(call.labels)
        if self.d_transform is not None and call.transform_args is not None:
            images = self.d_transform(self.losses.OPS, images, call.transform_args)
        return self._d_forward(images, context, call.penalty)

    def _start_step(self, step_key, shard: int = 0) -> None:
        """step_key: the step's dropout key as the backend's int64 scalar, or None. shard: the
        replica's rank, whose equal share of each global batch starts at row shard * B_local."""
        if "_keying" not in self.__dict__:
            self._keying = threading.local()
        self._keying.step_key, self._keying.d_calls, self._keying.shard = step_key, 0, shard

    def _d_context(self, labels=None) -> dict:
        """The context of D's next training call (its labels, when conditional); counts the call
        (while tracing, in graphs)."""
        context = {} if labels is None else {"labels": labels}
        state = self._keying
        if state.step_key is not None:
            context["call_key"] = self._mix(state.step_key ^ state.d_calls)
            if state.shard:
                context["shard"] = state.shard
            state.d_calls += 1
        return context

    # -- updates: fp16 skip-and-scale, Adam, EMA, learning rate -----------------------------
    def _scaled(self, key: str, loss):
        """The loss multiplied by the network's loss scale under fp16."""
        return loss * self._read(self.loss_scales[key]["scale"], like=loss) if self.loss_scales else loss

    def _apply(self, key: str, grads) -> None:
        """The replicas' mean gradient; under fp16 divided by the loss scale, the step skipped
        unless all of it is finite, the scale updated by GradScaler's rule (ganbench.precision)."""
        grads = self._all_reduce(key, grads)
        if not self.loss_scales:
            return self._update(key, grads)
        state = self.loss_scales[key]
        scale = self._read(state["scale"])
        grads = self._unscale(grads, scale)
        finite = self._all_finite(grads)
        new_scale, tracker = next_loss_scale(scale, self._read(state["tracker"]), finite, self.where)
        self._cond(finite, lambda: self._update(key, grads))
        self._write(state, "scale", new_scale)
        self._write(state, "tracker", tracker)
        self._write(state, "skipped", next_skipped(self._read(state["skipped"]), finite, self.where))

    def _update(self, key: str, grads) -> None:
        """The network's Adam step, and after G's, its EMA."""
        self._adam(key, grads)
        if key == "G" and self.G_ema is not None:
            self._update_ema()

    def _update_ema(self) -> None:
        """Every weight and buffer of G_ema moves toward G's (ganbench.ema), then its spectral-norm
        vectors return to unit length."""
        weight = ema_weight(self.hp.ema_decay, self.hp.ema_start, self._adam_steps("G"), self.where, self._exact)
        for ema, raw in self._ema_pairs():
            self._lerp(ema, raw, weight)
        vectors = sn_vectors(self.spec.generator)
        for vector, eps in zip(self._ema_tensors(list(vectors)), vectors.values()):
            self._normalise(vector, eps)

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (linear decay), in Python doubles as torch does."""
        for key in ("G", "D"):
            self._set_lr(key, self.base_lrs[key] * factor)

    def _loss_scale_state(self, scales: dict) -> dict:
        """fp16's {network: {"scale", "tracker", "skipped"}} (precision.initial_loss_scales) in
        the engine's mutable scalars."""
        return {key: {name: self._scalar_variable(value, integer=name != "scale") for name, value in fields.items()}
                for key, fields in scales.items()}

    def _scale_log(self) -> dict:
        """fp16: the loss scales and the updates skipped so far (D and G), to log."""
        if not self.loss_scales:
            return {}
        d, g = self.loss_scales["D"], self.loss_scales["G"]
        return {"loss_scale_d": self._read(d["scale"]), "loss_scale_g": self._read(g["scale"]),
                "skipped_updates": self._read(d["skipped"]) + self._read(g["skipped"])}

    # -- inputs -----------------------------------------------------------------------------
    def _step_tensors(self, inputs: StepInputs) -> dict:
        """The step's numpy inputs as the engine's tensors (None where the step has none)."""
        return {"reals": optional(self._images, inputs.reals), "z": optional(self._floats, inputs.z),
                "z_g": optional(self._floats, inputs.z_g), "alphas": optional(self._floats, inputs.alphas),
                "dropout_key": optional(self._key, inputs.dropout_key),
                "labels": optional(self._labels, inputs.labels),
                "fake_labels": optional(self._labels, inputs.fake_labels),
                "g_labels": optional(self._labels, inputs.g_labels),
                "transform_args": optional(self._floats, inputs.transform_args),
                "g_transform_args": optional(self._floats, inputs.g_transform_args),
                "consistency_args": optional(self._floats, inputs.consistency_args),
                "regularise": inputs.regularise}

    # -- benchmark breakdown ----------------------------------------------------------------
    def phase_fns(self, inputs: StepInputs) -> dict:
        """The parts of an alternating training step (STEP_PARTS), each a zero-argument callable
        ending with a host sync (`_bench_part`), for `ganbench bench`. Run once each, in order,
        they are the step: the G forwards of the D updates' fakes (without the last one when the G
        update reuses it), the n_dis D updates (penalty and Adam included), the G update (its G
        forward, D's forward, backward through both, Adam, EMA)."""
        if self.hp.update == "simultaneous":
            return {}  # one forward of G and D serves both updates: no parts that run apart
        t = self._step_tensors(inputs)
        self._start_step(t["dropout_key"])
        self._regularise = t["regularise"]
        z, fake_labels = t["z"], per_update(t["fake_labels"])
        reuse, last = t["z_g"] is None, inputs.n_dis - 1
        fakes = [None] * inputs.n_dis
        if reuse:  # made by the G update in training; drawn here once, so the D updates can run alone
            with self._no_grad():
                fakes[last] = self._stop_gradient(self._g_train(z[last], fake_labels[last]))

        def d_fakes():
            with self._no_grad():
                return [self._g_train(z[d], fake_labels[d]) for d in range(last if reuse else inputs.n_dis)]

        def d_updates(fakes):
            return [self._d_update(t["reals"][d], fakes[d], per_update(t["alphas"])[d], self._d_calls(t, d))
                    for d in range(inputs.n_dis)]

        def g_update():
            return self._g_update(*((z[last], fake_labels[last]) if reuse else (t["z_g"], t["g_labels"])),
                                  self._g_call(t), paired=self._paired_reals(t))

        run_fakes, run_updates, run_g = (self._bench_part(fn) for fn in (d_fakes, d_updates, g_update))

        def fakes_part():
            made = run_fakes()
            fakes[:len(made)] = made
            return made

        return dict(zip(STEP_PARTS, (fakes_part, lambda: run_updates(fakes), run_g)))

    # -- inference, sampling statistics and state -------------------------------------------
    def generate(self, z, training: bool = False, labels=None):
        """G(z) as float NHWC in [-1, 1] (numpy), by G_ema when there is one (and use_ema), else G;
        eval mode (running BN stats) unless training=True, which updates the BN running stats as a
        training forward does."""
        return self._sample(sampling_generator(self), self._floats(z), optional(self._labels, labels), training)

    def discriminate(self, images, training: bool = False, labels=None):
        """D's logits [B] (numpy) for NHWC images in [-1, 1] (and their labels, for a conditional D)."""
        context = None if labels is None else {"labels": self._labels(labels)}
        return self._logits(self._images(images), context, training)

    def standing_stats(self, batches) -> None:
        """The sampling generator's BatchNorm running statistics become their average over
        training-mode forwards of `batches`, (z, labels) numpy pairs (ganbench.ema)."""
        net = sampling_generator(self)
        norms = self._batch_norms(net)
        momenta = [norm.momentum for norm in norms]
        try:
            with self._training_forwards(net):
                for k, (z, labels) in enumerate(batches):
                    for norm in norms:
                        norm.momentum = standing_momentum(k)
                    self._g_forward(net, self._floats(z), optional(self._labels, labels), True)
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum

    def export_state(self) -> dict:
        """The canonical state: {"nets": {key: {name: array}}, "opt": {key: {"step", "exp_avg",
        "exp_avg_sq"}}, fp16's "loss_scales" and LeCam's "lecam"}."""
        nets = {key: self._export_net(key) for key in ("G", "D")}
        if self.G_ema is not None:
            nets["G_ema"] = self._export_net("G_ema")
        state = {"nets": nets, "opt": {}}
        for key in ("G", "D"):
            step, moments = self._adam_slots(key)
            state["opt"][key] = {"step": step, "exp_avg": {name: m for name, (m, _) in moments.items()},
                                 "exp_avg_sq": {name: v for name, (_, v) in moments.items()}}
        if self.lecam is not None:
            state["lecam"] = {name: self._python(value) for name, value in self.lecam.items()}
        if self.loss_scales:
            state["loss_scales"] = {key: {name: self._python(value) for name, value in fields.items()}
                                    for key, fields in self.loss_scales.items()}
        return state

    def _load_opt(self, opt_state: dict) -> None:
        """Adam's step counts and moments from the canonical state (a fresh network's step 0 kept)."""
        for key, saved in opt_state.items():
            if saved["step"]:
                self._set_adam_slots(key, saved["step"], {name: (m, saved["exp_avg_sq"][name])
                                                           for name, m in saved["exp_avg"].items()})

    # -- the engine: what each backend supplies ---------------------------------------------
    # building: _network(spec network, arrays, training=True), _set_compute_dtype(net, dtype name
    #   or None), _optimiser(key)
    # tensors: _images(nhwc array), _floats(array), _labels(int array), _key(int); _python(scalar)
    # _mix(x): rng.mix32 on the backend's int64 scalar; _shard(): this replica's rank
    # forwards: _g_train(z, labels) (G's training forward), _g_forward(net, z, labels, training),
    #   _d_forward(images, context, penalty) (a training forward of D)
    # differentiation: _gradients(keys, fn) -> ({key: grads}, outputs), fn() -> ({key: loss},
    #   outputs); _unrecorded(fn); _no_grad(); _frozen_D(); _stop_gradient(x)
    # numbers: where(cond, a, b); _cond(cond, fn); _exact(x) (a Python float rounded once to the
    #   compute dtype); _scalar_variable(value, integer), _read(value, like=None), _write(state,
    #   name, value)
    # updates: _all_reduce(key, grads), _unscale(grads, scale), _all_finite(grads), _adam(key,
    #   grads), _adam_steps(key), _set_lr(key, lr), _ema_pairs(), _lerp(ema, raw, weight),
    #   _ema_tensors(names), _normalise(vector, eps), _weight_matrix(name)
    # inference: _sample(net, z, labels, training), _logits(images, context, training),
    #   _batch_norms(net), _training_forwards(net)
    # parts and state: _bench_part(fn), _export_net(key),
    #   _adam_slots(key) -> (step, {name: (m, v)}), _set_adam_slots(key, step, {name: (m, v)})


class HostScalars:
    """The engine's numbers as Python values on the host (torch's way: a decision such as fp16's
    skip is taken in Python); a graph backend supplies tensors and variables instead."""

    where = staticmethod(python_where)

    @staticmethod
    def _cond(cond: bool, fn) -> None:
        if cond:
            fn()

    @staticmethod
    def _exact(x: float) -> float:
        return x

    @staticmethod
    def _scalar_variable(value, integer: bool):
        return value

    @staticmethod
    def _read(value, like=None):
        return value

    @staticmethod
    def _write(state: dict, name: str, value) -> None:
        state[name] = value
