"""PyTorch GAN: one training step, sampling, and state in the canonical layout."""

import math

import numpy as np
import torch

from ganbench.backends import resolve_mode
from ganbench.backends.torch import losses
from ganbench.backends.torch.nets import PREFIX, build_network, export_canonical, load_canonical
from ganbench.rng import mix32

NAME = "torch"
DEFAULT_MODE = "eager"  # torch.compile did not beat eager on the CPU (benchmarks/README.md)
OPTIONS = "channels_last memory format on the CPU; torch.optim.Adam's per-tensor loop (its CPU default)"
MODES = {
    "eager": "PyTorch eager",
    "compiled": "torch.compile of G and D forwards (inductor); backward by AOTAutograd; Adam eager; "
                "the WGAN-GP penalty's D forward stays eager (no double backward through compiled code)",
}


def framework_version() -> str:
    return torch.__version__


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class GAN:
    """Generator, discriminator and their Adam optimisers, with PyTorch semantics throughout.

    `hp` needs lr_g, lr_d, beta1, beta2, eps, loss, update and gp_lambda. Arrays cross the boundary as
    numpy NHWC.
    """

    backend = NAME

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default"):
        self.spec, self.hp, self.loss = spec, hp, hp.loss
        self.mode = resolve_mode(NAME, mode, MODES, DEFAULT_MODE)
        # float32 means float32 on a GPU too: PyTorch lets cuDNN convolutions use TF32 by default.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.device = torch.device(device or default_device())
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
        # training forwards go through these: the modules themselves, or their compiled wrappers
        self.train_G, self.train_D = self.G, self.D
        if self.mode == "compiled":
            self.train_G, self.train_D = torch.compile(self.G), torch.compile(self.D)
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
    def _start_step(self, dropout_key: int | None) -> None:
        """Key this step's D calls (rank 0, 1, ...) by its dropout key, if the model drops units."""
        self._d_calls = 0
        self._step_key = None if dropout_key is None else torch.tensor(dropout_key, device=self.device)

    def _call_D(self, images: torch.Tensor) -> torch.Tensor:
        """A training forward of D; its dropout masks are keyed by the step and the call's rank."""
        call_key = None
        if self._step_key is not None:
            call_key = mix32(self._step_key ^ self._d_calls)
            self._d_calls += 1
        return self.train_D(images, call_key)

    def _d_pair(self, real: torch.Tensor, fake: torch.Tensor) -> tuple:
        """D's logits on a real and a fake batch: two calls (BatchNorm sees each batch alone)."""
        return self._call_D(real), self._call_D(fake)

    def _d_update(self, real: torch.Tensor, fake: torch.Tensor, alpha) -> dict:
        fake = fake.detach()
        loss = losses.d_loss(self.loss, *self._d_pair(real, fake))
        out = {}
        if self.loss == "wgan-gp":
            out["gp"] = losses.gradient_penalty(self.D, real, fake, alpha)
            loss = loss + self.hp.gp_lambda * out["gp"]
        self.opts["D"].zero_grad(set_to_none=True)
        loss.backward()
        self._opt_step("D")
        return {"d_loss": loss, **out}

    def _opt_step(self, key: str) -> None:
        """One Adam step; eps_form "keras" (eps added to sqrt(v) before the bias correction) is
        torch's form with eps / sqrt(1 - beta2^t), set in Python doubles before the step."""
        opt = self.opts[key]
        if self.hp.eps_form == "keras":
            t = 1 + max((int(s["step"]) for s in opt.state.values()), default=0)
            for group in opt.param_groups:
                group["eps"] = self.hp.eps / math.sqrt(1.0 - self.hp.beta2**t)
        opt.step()

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (linear decay); computed in Python doubles as torch does."""
        for key, opt in self.opts.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lrs[key] * factor

    def train_step(self, reals: np.ndarray, z: np.ndarray, z_g: np.ndarray | None = None,
                   alphas: np.ndarray | None = None, dropout_key: int | None = None) -> dict:
        """n_dis D updates then one G update (hp.update 'alternating'), or one forward of G and D
        whose losses update both ('simultaneous').

        reals: float32 [n_dis, B, H, W, C] in [-1, 1]; z: float32 [n_dis, B, z_dim].
        z_g: float32 [B_g, z_dim], the G update's own noise; None: the G update reuses the fake
        batch of the last D update (as pytorch/examples dcgan does), scored by the updated D.
        alphas: float32 [n_dis, B] in [0, 1], WGAN-GP's interpolation weights.
        dropout_key: the step's key of D's dropout masks (rng.dropout_step_key).
        """
        self._start_step(dropout_key)
        reals_t, z_t = self._tensor(reals, nhwc=True), self._tensor(z)
        if self.hp.update == "simultaneous":
            return self._simultaneous_step(reals_t[0], z_t[0])
        alphas_t = self._tensor(alphas) if alphas is not None else [None] * len(reals_t)
        n_dis = len(reals_t)
        for d in range(n_dis):
            with torch.set_grad_enabled(z_g is None and d == n_dis - 1):
                fake = self.train_G(z_t[d])
            d_out = self._d_update(reals_t[d], fake, alphas_t[d])
        if z_g is not None:
            fake = self.train_G(self._tensor(z_g))
        self.D.requires_grad_(False)  # the G step needs dL/dfake only, not D's weight gradients
        g_loss = losses.g_loss(self.loss, self._call_D(fake))
        self.opts["G"].zero_grad(set_to_none=True)
        g_loss.backward()
        self._opt_step("G")
        self.D.requires_grad_(True)
        return {**{k: v.item() for k, v in d_out.items()}, "g_loss": g_loss.item()}

    def _simultaneous_step(self, real: torch.Tensor, z: torch.Tensor) -> dict:
        """TensorFlow's DCGAN tutorial: one G forward and D on real and fake; G's gradient from
        its loss, D's from its own, both from that forward, both applied."""
        fake = self.train_G(z)
        d_real, d_fake = self._d_pair(real, fake)
        d_loss, g_loss = losses.d_loss(self.loss, d_real, d_fake), losses.g_loss(self.loss, d_fake)
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(self.G.parameters()), retain_graph=True)
        d_loss.backward(inputs=list(self.D.parameters()))
        for key in self.opts:
            self._opt_step(key)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    # -- benchmark breakdown ----------------------------------------------------------------
    def phase_fns(self, reals: np.ndarray, z: np.ndarray, dropout_key: int | None = None, **_) -> dict:
        """The parts of an update, each a zero-argument callable that ends with a host sync (for
        `ganbench bench`): G forward; D forward and backward on real and fake; the G update (G
        forward, D forward, backward through both); both Adam steps. Each runs alone, in this
        GAN's mode; the optimiser part moves the weights."""
        real, z = self._tensor(reals, nhwc=True)[0], self._tensor(z)[0]
        self._start_step(dropout_key)
        fake = self.train_G(z).detach()
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

        def d_forward_backward():
            losses.d_loss(self.loss, *self._d_pair(real, fake)).backward()
            sync()

        def g_update():
            self.D.requires_grad_(False)
            losses.g_loss(self.loss, self._call_D(self.train_G(z))).backward()
            self.D.requires_grad_(True)
            sync()

        def optimiser():
            self._opt_step("D")
            self._opt_step("G")
            sync()

        d_forward_backward(), g_update()  # every gradient exists before the optimiser runs
        return {"G forward": lambda: (self.train_G(z), sync()), "D forward/backward": d_forward_backward,
                "G update": g_update, "optimiser": optimiser}

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """G(z) as float NHWC in [-1, 1]; eval mode (running BN stats) unless training=True.
        In training mode the BN running stats are updated, as in a training forward."""
        self.G.train(training)
        try:
            return self._nhwc(self.G(self._tensor(z)))
        finally:
            self.G.train()

    @torch.no_grad()
    def discriminate(self, images: np.ndarray, training: bool = False) -> np.ndarray:
        """D's logits [B] for NHWC images in [-1, 1]."""
        self.D.train(training)
        try:
            return self.D(self._tensor(images, nhwc=True)).reshape(-1).cpu().numpy()
        finally:
            self.D.train()

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict:
        nets = {key: export_canonical(module, self.spec.networks[key]) for key, module in self.nets.items()}
        return {"nets": nets, "opt": {key: self._export_opt(key) for key in self.nets}}

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
