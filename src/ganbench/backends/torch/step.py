"""PyTorch GAN: one training step, sampling, and state in the canonical layout."""

import math
from types import SimpleNamespace

import numpy as np
import torch

from ganbench.backends import resolve_mode
from ganbench.backends.keying import DCallKeying, per_update
from ganbench.backends.torch import losses
from ganbench.backends.torch.nets import (PREFIX, BatchNorm, SpectralNorm, build_network, canonical_names,
                                          export_canonical, load_canonical, set_compute_dtype)
from ganbench.distributed import SINGLE, SingleProcess, World
from ganbench.errors import GanbenchError
from ganbench.ema import ema_weight, sampling_generator, sn_vectors, standing_momentum
from ganbench.losses import ortho_regularised
from ganbench.precision import compute_dtype, initial_loss_scales, next_loss_scale, python_where, scales_loss
from ganbench.rng import mix32
from ganbench.step_inputs import STEP_PARTS, StepInputs

NAME = "torch"
DEFAULT_MODE = "eager"  # torch.compile did not beat eager on the CPU (benchmarks/README.md)
OPTIONS = "channels_last memory format on the CPU; torch.optim.Adam's per-tensor loop (its CPU default)"
# what a collective raises when another worker dies or hangs up (gloo and NCCL raise RuntimeError)
COLLECTIVE_ERRORS = (RuntimeError,)
MODES = {
    "eager": "PyTorch eager",
    "compiled": "torch.compile of G and D forwards (inductor); backward by AOTAutograd; Adam eager; "
                "the WGAN-GP penalty's D forward stays eager (no double backward through compiled code)",
    "cudagraphs": "the compiled mode with torch.compile(mode='reduce-overhead'): its graphs replayed as CUDA "
                  "graphs, a new CUDA-graph iteration marked at each step (CUDA devices only)",
}
# torch.compile's arguments in each compiling mode: static shapes, since a step has at most a few
# batch sizes (D, fresh G batch) and inductor failed on the symbolic sizes of max pooling with
# dynamic=None (torch 2.14)
COMPILE_OPTIONS = {"compiled": {"dynamic": False}, "cudagraphs": {"dynamic": False, "mode": "reduce-overhead"}}


def owning_sn_vectors(net: torch.nn.Module, compiled):
    """cudagraphs mode: `compiled` (net's compiled forward), after whose calls net's spectral-norm
    vectors are their own buffers again, the new values copied in. A training forward rebinds them
    to new tensors (nets.SpectralNorm), which here are its CUDA graph's output buffers: a later
    replay may overwrite those, and a buffer at a new address makes CUDA graph trees record anew."""
    layers = [m for m in net.modules() if isinstance(m, SpectralNorm)]

    def call(*args):
        buffers = [(m, m.sn_u, m.sn_v) for m in layers]
        out = compiled(*args)
        with torch.no_grad():
            for m, u, v in buffers:
                m.sn_u, m.sn_v = u.copy_(m.sn_u), v.copy_(m.sn_v)
        return out
    return call


# Process-wide, set once when the backend is imported: float32 means float32 on a GPU too
# (PyTorch lets cuDNN convolutions use TF32 by default).
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def framework_version() -> str:
    return torch.__version__


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def collective(world: World):
    """The collective operations among the world's processes (joining its process group)."""
    if not world.distributed:
        return SingleProcess()
    from ganbench.backends.torch.distributed import Collective

    return Collective(world)


class GAN(DCallKeying):
    """Generator, discriminator and their Adam optimisers, with PyTorch semantics throughout.

    `hp` needs lr_g, lr_d, beta1, beta2, eps, loss, update and gp_lambda. Arrays cross the boundary as
    numpy NHWC.
    """

    backend = NAME

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default", world: World = SINGLE):
        self.spec, self.hp, self.loss, self.world = spec, hp, hp.loss, world
        self.mode = resolve_mode(NAME, mode, MODES, DEFAULT_MODE)
        if world.distributed:
            from ganbench.backends.torch.distributed import device_for

            if self.mode != "eager":
                raise GanbenchError(f"the torch backend trains in several processes in eager mode only, not {self.mode!r}")
            device = device or device_for(world)
        self.device = torch.device(device or default_device())
        if self.mode == "cudagraphs" and self.device.type != "cuda":
            raise GanbenchError(f"the torch backend's cudagraphs mode needs a CUDA device, not {self.device.type!r} "
                                "(use --mode compiled)")
        self.collective = collective(world)
        self.dtype = getattr(torch, dtype)
        # NHWC memory under NCHW indexing: oneDNN's faster layout (benchmarks/fast_step.py: 0-13%
        # faster CPU steps); not measured on a GPU, where the contiguous layout stays.
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.nets = {}
        for key, net in spec.networks.items():
            module = build_network(net).to(self.device, self.dtype, memory_format=self.memory_format)
            load_canonical(module, net, state["nets"][key])
            self.nets[key] = module.train()
        self.G, self.D = self.nets["G"], self.nets["D"]
        # the BatchNorms a data-parallel training step synchronises (not G_ema's: it never trains)
        self._norms = [m for net in (self.G, self.D) for m in net.modules() if isinstance(m, BatchNorm)]
        self.G_ema = self._build_ema(state) if hp.ema_decay else None
        low = compute_dtype(hp.precision)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                set_compute_dtype(net, None if low is None else getattr(torch, low))
        # fp16: {network: {"scale", "tracker", "skipped"}}, the loss scale rule in Python numbers
        self.loss_scales = initial_loss_scales(state) if scales_loss(hp.precision) else None
        self.use_ema = True  # sample from G_ema when there is one (sampling.load_generator may turn it off)
        # training forwards go through these: the modules themselves, or their compiled wrappers
        self.train_G, self.train_D = self.G, self.D
        if self.mode in COMPILE_OPTIONS:
            self.train_G, self.train_D = (torch.compile(net, **COMPILE_OPTIONS[self.mode]) for net in (self.G, self.D))
            if self.mode == "cudagraphs":
                self.train_G, self.train_D = (owning_sn_vectors(net, compiled)
                                              for net, compiled in zip((self.G, self.D), (self.train_G, self.train_D)))
            if hp.update == "simultaneous":
                # two backward passes share D's graph on the fakes (retain_graph), which compiled
                # backward functions refuse while they donate (reuse) their saved buffers
                torch._functorch.config.donated_buffer = False
        self._start_step(None)  # the dropout keying of the current step's D calls
        self.base_lrs = {"G": hp.lr_g, "D": hp.lr_d}
        self.opts = {
            key: torch.optim.Adam(module.parameters(), lr=self.base_lrs[key], betas=(hp.beta1, hp.beta2), eps=hp.eps)
            for key, module in self.nets.items()
        }
        if state.get("opt"):
            self._load_opt(state["opt"])

    def _build_ema(self, state: dict):
        """G's exponential moving average: from the state's G_ema, else a copy of G. Always in
        eval mode; it never trains, it is only averaged (ema.py)."""
        module = build_network(self.spec.generator).to(self.device, self.dtype, memory_format=self.memory_format)
        load_canonical(module, self.spec.generator, state["nets"].get("G_ema", state["nets"]["G"]))
        return module.eval()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """After a G update: every weight and buffer of G_ema moves toward G's (ema.ema_weight)."""
        weight = ema_weight(self.hp.ema_decay, self.hp.ema_start, self._g_updates())
        ema, raw = self.G_ema.state_dict(), self.G.state_dict()
        for name in canonical_names(self.spec.generator):  # not BN's integer batch counter
            ema[PREFIX + name].mul_(weight).add_(raw[PREFIX + name], alpha=1.0 - weight)
        for name, eps in sn_vectors(self.spec.generator).items():
            vector = ema[PREFIX + name]
            vector.div_(vector.norm().clamp_min(eps))

    def _g_updates(self) -> int:
        """G's Adam step count: the G updates taken, this run and the ones it resumed."""
        return max((int(slot["step"]) for slot in self.opts["G"].state.values()), default=0)

    # -- numpy boundary ---------------------------------------------------------------------
    def _tensor(self, array: np.ndarray, nhwc: bool = False) -> torch.Tensor:
        """A tensor of the array; nhwc: images [..., H, W, C] indexed as [..., C, H, W], their
        memory left NHWC (channels_last) when that is the GAN's format."""
        if nhwc and self.memory_format == torch.channels_last:
            return self._tensor(array).movedim(-1, -3)
        array = np.asarray(array)
        if nhwc:
            array = np.moveaxis(array, -1, -3)
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self.dtype)

    @staticmethod
    def _nhwc(images: torch.Tensor) -> np.ndarray:
        return images.detach().permute(0, 2, 3, 1).cpu().numpy()

    # -- training ---------------------------------------------------------------------------
    _mix = staticmethod(mix32)

    def _d_forward(self, images: torch.Tensor, context: dict) -> torch.Tensor:
        return self.train_D(images, context)

    def _key(self, dropout_key: int | None):
        return None if dropout_key is None else torch.tensor(dropout_key, device=self.device)

    def _labels(self, labels: np.ndarray | None):
        return None if labels is None else torch.from_numpy(np.asarray(labels, np.int64)).to(self.device)

    def _g_forward(self, net, z: torch.Tensor, labels) -> torch.Tensor:
        return net(z, None if labels is None else {"labels": labels})

    def _d_update(self, real: torch.Tensor, fake: torch.Tensor, alpha, real_labels=None, fake_labels=None) -> dict:
        fake = fake.detach()
        loss = losses.d_loss(self.loss, *self._d_pair(real, fake, real_labels, fake_labels))
        out = {}
        if self.loss == "wgan-gp":
            # keyed like every D call of the step, but eager: compiled code has no double backward
            critic = lambda x: self.D(x, self._d_context(real_labels))  # noqa: E731
            scale = self.loss_scales["D"]["scale"] if self.loss_scales else None
            out["gp"] = losses.gradient_penalty(critic, real, fake, alpha, scale)
            loss = loss + self.hp.gp_lambda * out["gp"]
        self.opts["D"].zero_grad(set_to_none=True)
        self._backward("D", loss)
        self._opt_step("D")
        return {"d_loss": loss, **out}

    def _backward(self, key: str, loss: torch.Tensor, **kwargs) -> None:
        """loss.backward(), the loss multiplied by the network's loss scale under fp16."""
        (loss * self.loss_scales[key]["scale"] if self.loss_scales else loss).backward(**kwargs)

    def _unscaled_and_finite(self, key: str) -> bool:
        """fp16: divide the network's gradients by its loss scale, update the scale by GradScaler's
        rule (ganbench.precision), and say whether every gradient is finite (else the step is skipped)."""
        state = self.loss_scales[key]
        grads = [p.grad for p in self.nets[key].parameters() if p.grad is not None]
        torch._foreach_mul_(grads, 1.0 / state["scale"])
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        state["scale"], state["tracker"] = next_loss_scale(state["scale"], state["tracker"], finite, python_where)
        state["skipped"] += not finite
        return finite

    def _opt_step(self, key: str) -> None:
        """One Adam step (then G's EMA, after G's); eps_form "keras" (eps added to sqrt(v) before
        the bias correction) is torch's form with eps / sqrt(1 - beta2^t), set in Python doubles
        before the step."""
        if self.world.distributed:
            from ganbench.backends.torch.distributed import average_gradients

            average_gradients(self.nets[key].parameters(), self.world.size)
        if self.loss_scales and not self._unscaled_and_finite(key):
            return  # a skipped step: no Adam step, no EMA update
        opt = self.opts[key]
        if self.hp.eps_form == "keras":
            t = 1 + max((int(s["step"]) for s in opt.state.values()), default=0)
            for group in opt.param_groups:
                group["eps"] = self.hp.eps / math.sqrt(1.0 - self.hp.beta2**t)
        opt.step()
        if key == "G" and self.G_ema is not None:
            self._update_ema()

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (linear decay); computed in Python doubles as torch does."""
        for key, opt in self.opts.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lrs[key] * factor

    def _step_tensors(self, inputs: StepInputs) -> SimpleNamespace:
        """The step's numpy inputs as tensors; labels, fake_labels and alphas indexed by D update."""
        return SimpleNamespace(
            reals=self._tensor(inputs.reals, nhwc=True), z=self._tensor(inputs.z),
            labels=per_update(self._labels(inputs.labels)), fake_labels=per_update(self._labels(inputs.fake_labels)),
            alphas=per_update(None if inputs.alphas is None else self._tensor(inputs.alphas)),
            z_g=None if inputs.z_g is None else self._tensor(inputs.z_g), g_labels=self._labels(inputs.g_labels),
            n_dis=inputs.n_dis)

    def train_step(self, inputs: StepInputs) -> dict:
        """One training step on this replica's share of the inputs (distributed.shard_inputs); the
        losses returned are the replicas' mean. Under several replicas with hp.sync_bn, G's and D's
        BatchNorms normalise over the global batch during the step (and only then)."""
        if not self.world.distributed:
            return self._local_step(inputs)
        norms = self._norms if self.hp.sync_bn else []
        for m in norms:
            m.sync_replicas = self.world.size
        try:
            out = self._local_step(inputs)
        finally:
            for m in norms:
                m.sync_replicas = 1
        return dict(zip(out, self.collective.mean(list(out.values()))))

    def _local_step(self, inputs: StepInputs) -> dict:
        """n_dis D updates then one G update (hp.update 'alternating'), or one forward of G and D
        whose losses update both ('simultaneous'). Without inputs.z_g the G update reuses the
        fake batch of the last D update (as pytorch/examples dcgan does), scored by the updated D."""
        self._mark_cuda_graph_step()
        self._start_step(self._key(inputs.dropout_key), self.world.rank)
        t = self._step_tensors(inputs)
        if self.hp.update == "simultaneous":
            return self._simultaneous_step(t.reals[0], t.z[0], t.labels[0], t.fake_labels[0])
        reuse, last = t.z_g is None, t.n_dis - 1
        for d in range(t.n_dis):
            with torch.set_grad_enabled(reuse and d == last):
                fake = self._outliving(self._g_forward(self.train_G, t.z[d], t.fake_labels[d]))
            d_out = self._d_update(t.reals[d], fake, t.alphas[d], t.labels[d], t.fake_labels[d])
        g_labels = t.fake_labels[last] if reuse else t.g_labels
        if not reuse:
            fake = self._g_forward(self.train_G, t.z_g, g_labels)
        g_out = self._g_update(fake, g_labels)
        return {**{k: v.item() for k, v in d_out.items()}, **g_out, **self._scale_log()}

    def _mark_cuda_graph_step(self) -> None:
        """cudagraphs mode: a new CUDA-graph iteration begins, which may reuse the memory of the
        graphs' outputs from the one before (the step's own outputs stay valid until the next mark)."""
        if self.mode == "cudagraphs":
            torch.compiler.cudagraph_mark_step_begin()

    def _outliving(self, x: torch.Tensor) -> torch.Tensor:
        """x, to be used after later graph replays: in cudagraphs mode a copy, since a replay may
        overwrite the buffers of the outputs before it."""
        return x.clone() if self.mode == "cudagraphs" else x

    def _scale_log(self) -> dict:
        """fp16: the loss scales and the updates skipped so far (D and G), to log."""
        if not self.loss_scales:
            return {}
        scales = self.loss_scales
        return {"loss_scale_d": scales["D"]["scale"], "loss_scale_g": scales["G"]["scale"],
                "skipped_updates": scales["D"]["skipped"] + scales["G"]["skipped"]}

    def _g_update(self, fake: torch.Tensor, labels) -> dict:
        """G's loss on `fake` through D (plus the orthogonal penalty), backward, Adam and EMA."""
        g_loss = self._g_loss_through_frozen_D(fake, labels)
        regularised, ortho = self._with_ortho(g_loss)
        self.opts["G"].zero_grad(set_to_none=True)
        self._backward("G", regularised)
        self._opt_step("G")
        return {"g_loss": g_loss.item(), **ortho}

    def _with_ortho(self, g_loss: torch.Tensor) -> tuple:
        """(G's loss plus hp.ortho_reg times the orthogonal penalty, {"ortho": penalty} to log)."""
        if not self.hp.ortho_reg:
            return g_loss, {}
        penalty = self.ortho_penalty()
        return g_loss + self.hp.ortho_reg * penalty, {"ortho": penalty.item()}

    def ortho_penalty(self) -> torch.Tensor:
        """losses.ortho_penalty over G's weights that losses.ortho_regularised names, as (out, -1)
        matrices."""
        params = dict(self._named_params("G"))
        return losses.ortho_penalty([params[name].reshape(params[name].shape[0], -1)
                                     for name in ortho_regularised(self.spec.generator)])

    def _g_loss_through_frozen_D(self, fake: torch.Tensor, labels=None) -> torch.Tensor:
        """G's loss on D's training call; D's weights need no gradient for it (only dL/dfake)."""
        self.D.requires_grad_(False)
        try:
            return losses.g_loss(self.loss, self._call_D(fake, labels))
        finally:
            self.D.requires_grad_(True)

    def _simultaneous_step(self, real: torch.Tensor, z: torch.Tensor, labels=None, fake_labels=None) -> dict:
        """TensorFlow's DCGAN tutorial: one G forward and D on real and fake; G's gradient from
        its loss, D's from its own, both from that forward, both applied."""
        fake = self._g_forward(self.train_G, z, fake_labels)
        d_real, d_fake = self._d_pair(real, fake, labels, fake_labels)
        d_loss, g_loss = losses.d_loss(self.loss, d_real, d_fake), losses.g_loss(self.loss, d_fake)
        regularised, ortho = self._with_ortho(g_loss)
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        self._backward("G", regularised, inputs=list(self.G.parameters()), retain_graph=True)
        self._backward("D", d_loss, inputs=list(self.D.parameters()))
        for key in self.opts:
            self._opt_step(key)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), **ortho, **self._scale_log()}

    # -- benchmark breakdown ----------------------------------------------------------------
    def phase_fns(self, inputs: StepInputs) -> dict:
        """The parts of an alternating training step (STEP_PARTS), each a zero-argument
        callable ending with a host sync, for `ganbench bench`. Run once each, in order, they are
        the step: the G forwards of the D updates' fakes (without the last one when the G update
        reuses it), the n_dis D updates (penalty and Adam included), the G update (its G forward,
        D's forward, backward through both, Adam, EMA)."""
        if self.hp.update == "simultaneous":
            return {}  # one forward of G and D serves both updates: no parts that run apart
        self._start_step(self._key(inputs.dropout_key))
        t = self._step_tensors(inputs)
        reuse, last = t.z_g is None, t.n_dis - 1
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        # each part is a CUDA-graph iteration of its own in cudagraphs mode
        fakes = [None] * t.n_dis
        if reuse:  # made by the G update in training; drawn here once, so the D updates can run alone
            fakes[last] = self._outliving(self._g_forward(self.train_G, t.z[last], t.fake_labels[last]).detach())

        @torch.no_grad()
        def d_fakes():
            self._mark_cuda_graph_step()
            for d in range(last if reuse else t.n_dis):
                fakes[d] = self._outliving(self._g_forward(self.train_G, t.z[d], t.fake_labels[d]))
            sync()

        def d_updates():
            self._mark_cuda_graph_step()
            for d in range(t.n_dis):
                self._d_update(t.reals[d], fakes[d], t.alphas[d], t.labels[d], t.fake_labels[d])
            sync()

        def g_update():
            self._mark_cuda_graph_step()
            z, labels = (t.z[last], t.fake_labels[last]) if reuse else (t.z_g, t.g_labels)
            self._g_update(self._g_forward(self.train_G, z, labels), labels)
            sync()

        return dict(zip(STEP_PARTS, (d_fakes, d_updates, g_update)))

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: np.ndarray, training: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
        """G(z) as float NHWC in [-1, 1], by G_ema when there is one (and use_ema), else G; eval
        mode (running BN stats) unless training=True, which updates the BN running stats as a
        training forward does."""
        net = sampling_generator(self)
        was_training = net.training
        net.train(training)
        try:
            return self._nhwc(self._g_forward(net, self._tensor(z), self._labels(labels)))
        finally:
            net.train(was_training)

    @torch.no_grad()
    def standing_stats(self, batches) -> None:
        """The sampling generator's BatchNorm running statistics become their average over
        training-mode forwards of `batches`, (z, labels) numpy pairs (ganbench.ema)."""
        net = sampling_generator(self)
        norms = [m for m in net.modules() if isinstance(m, BatchNorm)]
        momenta, was_training = [m.momentum for m in norms], net.training
        net.train()
        try:
            for k, (z, labels) in enumerate(batches):
                for m in norms:
                    m.momentum = standing_momentum(k)
                self._g_forward(net, self._tensor(z), self._labels(labels))
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            net.train(was_training)

    @torch.no_grad()
    def discriminate(self, images: np.ndarray, training: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
        """D's logits [B] for NHWC images in [-1, 1] (and their labels, for a conditional D)."""
        self.D.train(training)
        try:
            context = None if labels is None else {"labels": self._labels(labels)}
            return self.D(self._tensor(images, nhwc=True), context).reshape(-1).cpu().numpy()
        finally:
            self.D.train()

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict:
        nets = {key: export_canonical(module, self.spec.networks[key]) for key, module in self.nets.items()}
        if self.G_ema is not None:
            nets["G_ema"] = export_canonical(self.G_ema, self.spec.generator)
        state = {"nets": nets, "opt": {key: self._export_opt(key) for key in self.nets}}
        if self.loss_scales:
            state["loss_scales"] = {key: dict(value) for key, value in self.loss_scales.items()}
        return state

    def _named_params(self, key: str) -> list:
        return [(name.removeprefix(PREFIX), param) for name, param in self.nets[key].named_parameters()]

    def _export_opt(self, key: str) -> dict:
        out = {"step": 0, "exp_avg": {}, "exp_avg_sq": {}}
        for name, param in self._named_params(key):
            slot = self.opts[key].state.get(param)
            if not slot:
                zeros = np.zeros(tuple(param.shape), np.float32)
                out["exp_avg"][name], out["exp_avg_sq"][name] = zeros, zeros.copy()
                continue
            out["step"] = int(slot["step"].item())
            for moment in ("exp_avg", "exp_avg_sq"):
                out[moment][name] = slot[moment].detach().cpu().numpy().copy()
        return out

    def _load_opt(self, opt_state: dict) -> None:
        for key, saved in opt_state.items():
            if saved["step"] == 0:
                continue
            for name, param in self._named_params(key):
                self.opts[key].state[param] = {
                    "step": torch.tensor(float(saved["step"]), dtype=torch.float32),
                    "exp_avg": torch.zeros_like(param).copy_(self._tensor(saved["exp_avg"][name])),
                    "exp_avg_sq": torch.zeros_like(param).copy_(self._tensor(saved["exp_avg_sq"][name])),
                }
