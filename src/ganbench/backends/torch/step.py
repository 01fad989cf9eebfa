"""PyTorch GAN: the engine of ganbench.step's training step, sampling, and the state's tensors."""

import contextlib
import math

import numpy as np
import torch

from ganbench.backends import resolve_mode
from ganbench.backends.torch import losses
from ganbench.backends.torch.nets import (PREFIX, BatchNorm, SpectralNorm, build_network, canonical_names,
                                          export_canonical, load_canonical, set_compute_dtype)
from ganbench.distributed import SINGLE, SingleProcess, World
from ganbench.errors import GanbenchError
from ganbench.rng import mix32
from ganbench.step import GANStep, HostScalars
from ganbench.step_inputs import StepInputs

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


class GAN(HostScalars, GANStep):
    """Generator, discriminator and their Adam optimisers, with PyTorch semantics throughout.

    `hp` needs lr_g, lr_d, beta1, beta2, eps, loss, update and gp_lambda. Arrays cross the boundary as
    numpy NHWC.
    """

    backend = NAME
    losses = losses

    def __init__(self, spec, state: dict, hp, device: str | None = None, dtype: str = "float32",
                 mode: str = "default", world: World = SINGLE):
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
        # NHWC memory under NCHW indexing: oneDNN's faster layout (benchmarks/fast_step.py, retired at a52ff61:
        # 0-13% faster CPU steps); not measured on a GPU, where the contiguous layout stays.
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self._build(spec, state, hp, world)
        # the BatchNorms a data-parallel training step synchronises (not G_ema's: it never trains)
        self._norms = [m for net in (self.G, self.D) for m in net.modules() if isinstance(m, BatchNorm)]
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

    # -- the engine of ganbench.step: building ----------------------------------------------
    def _network(self, net, arrays: dict, training: bool = True) -> torch.nn.Module:
        module = build_network(net).to(self.device, self.dtype, memory_format=self.memory_format)
        load_canonical(module, net, arrays)
        return module.train(training)

    @staticmethod
    def _set_compute_dtype(net, dtype: str | None) -> None:
        set_compute_dtype(net, None if dtype is None else getattr(torch, dtype))

    def _optimiser(self, key: str) -> torch.optim.Adam:
        hp = self.hp
        return torch.optim.Adam(self.nets[key].parameters(), lr=self.base_lrs[key], betas=(hp.beta1, hp.beta2),
                                eps=hp.eps)

    # -- training ---------------------------------------------------------------------------
    def train_step(self, inputs: StepInputs) -> dict:
        """One training step (ganbench.step) on this replica's share of the inputs
        (distributed.shard_inputs); the losses returned are the replicas' mean. Under several
        replicas with hp.sync_bn, G's and D's BatchNorms normalise over the global batch during the
        step (and only then)."""
        self._mark_cuda_graph_step()
        if not self.world.distributed:
            return self._outputs(self._local_step(self._step_tensors(inputs)))
        norms = self._norms if self.hp.sync_bn else []
        for m in norms:
            m.sync_replicas = self.world.size
        try:
            out = self._outputs(self._local_step(self._step_tensors(inputs)))
        finally:
            for m in norms:
                m.sync_replicas = 1
        return dict(zip(out, self.collective.mean(list(out.values()))))

    def _outputs(self, out: dict) -> dict:
        return {name: self._python(value) for name, value in out.items()}

    def _mark_cuda_graph_step(self) -> None:
        """cudagraphs mode: a new CUDA-graph iteration begins, which may reuse the memory of the
        graphs' outputs from the one before (the step's own outputs stay valid until the next mark)."""
        if self.mode == "cudagraphs":
            torch.compiler.cudagraph_mark_step_begin()

    # -- the engine of ganbench.step: tensors ----------------------------------------------
    def _images(self, array: np.ndarray) -> torch.Tensor:
        """NHWC images indexed as NCHW, their memory left NHWC (channels_last) when that is the
        GAN's format."""
        if self.memory_format == torch.channels_last:
            return self._floats(array).movedim(-1, -3)
        return self._floats(np.moveaxis(np.asarray(array), -1, -3))

    def _floats(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self.dtype)

    def _labels(self, labels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(labels, np.int64)).to(self.device)

    def _key(self, key: int) -> torch.Tensor:
        return torch.tensor(key, device=self.device)

    @staticmethod
    def _python(value):
        return value.item() if isinstance(value, torch.Tensor) else value

    _mix = staticmethod(mix32)

    def _shard(self) -> int:
        return self.world.rank

    # -- forwards and gradients --------------------------------------------------------------
    def _g_train(self, z, labels):
        """G's training forward; in cudagraphs mode a copy, since a later replay may overwrite the
        buffers of the outputs before it."""
        fake = self._g_forward(self.train_G, z, labels)
        return fake.clone() if self.mode == "cudagraphs" else fake

    @staticmethod
    def _g_forward(net, z, labels, training: bool = True):
        return net(z, None if labels is None else {"labels": labels})

    def _d_forward(self, images, context: dict, penalty: bool):
        # the penalty's call stays eager: compiled code has no double backward
        return (self.D if penalty else self.train_D)(images, context)

    def _gradients(self, keys: tuple, fn) -> tuple:
        """Each network's .grad from its loss (backward into its parameters only)."""
        scaled, out = fn()
        for i, key in enumerate(keys):
            self.opts[key].zero_grad(set_to_none=True)
            scaled[key].backward(inputs=list(self.nets[key].parameters()), retain_graph=i < len(keys) - 1)
        return {key: self._grads(key) for key in keys}, out

    def _grads(self, key: str) -> list:
        return [p.grad for p in self.nets[key].parameters()]

    @staticmethod
    def _unrecorded(fn):
        return fn()

    _no_grad = staticmethod(torch.no_grad)

    @contextlib.contextmanager
    def _frozen_D(self):
        self.D.requires_grad_(False)
        try:
            yield
        finally:
            self.D.requires_grad_(True)

    @staticmethod
    def _stop_gradient(x):
        return x.detach()

    # -- updates (on the parameters' .grad, changed in place) --------------------------------
    def _all_reduce(self, key: str, grads: list) -> list:
        if not self.world.distributed:
            return grads
        from ganbench.backends.torch.distributed import average_gradients

        average_gradients(self.nets[key].parameters(), self.world.size)
        return self._grads(key)

    @staticmethod
    def _unscale(grads: list, scale: float) -> list:
        torch._foreach_mul_([g for g in grads if g is not None], 1.0 / scale)
        return grads

    @staticmethod
    def _all_finite(grads: list) -> bool:
        return bool(torch.stack([torch.isfinite(g).all() for g in grads if g is not None]).all())

    def _adam(self, key: str, grads: list) -> None:
        """torch.optim.Adam on .grad; eps_form "keras" (eps added to sqrt(v) before the bias
        correction) is torch's form with eps / sqrt(1 - beta2^t), set in Python doubles."""
        opt = self.opts[key]
        if self.hp.eps_form == "keras":
            t = 1 + self._adam_steps(key)
            for group in opt.param_groups:
                group["eps"] = self.hp.eps / math.sqrt(1.0 - self.hp.beta2**t)
        opt.step()

    def _adam_steps(self, key: str) -> int:
        """The network's Adam step count: its updates taken, this run and the ones it resumed."""
        return max((int(slot["step"]) for slot in self.opts[key].state.values()), default=0)

    def _set_lr(self, key: str, lr: float) -> None:
        for group in self.opts[key].param_groups:
            group["lr"] = lr

    def _ema_pairs(self) -> list:
        ema, raw = self.G_ema.state_dict(), self.G.state_dict()
        return [(ema[PREFIX + name], raw[PREFIX + name]) for name in canonical_names(self.spec.generator)]

    @staticmethod
    def _lerp(ema, raw, weight: float) -> None:
        ema.mul_(weight).add_(raw, alpha=1.0 - weight)

    def _ema_tensors(self, names: list) -> list:
        ema = self.G_ema.state_dict()
        return [ema[PREFIX + name] for name in names]

    @staticmethod
    def _normalise(vector, eps: float) -> None:
        vector.div_(vector.norm().clamp_min(eps))

    def _weight_matrix(self, name: str):
        param = self.G.get_parameter(PREFIX + name)
        return param.reshape(param.shape[0], -1)

    # -- parts and state ---------------------------------------------------------------------
    def _bench_part(self, fn):
        """fn as a part of the bench: a CUDA-graph iteration of its own in cudagraphs mode, ending
        with a host sync."""
        def run(*args):
            self._mark_cuda_graph_step()
            out = fn(*args)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            return out
        return run

    def _export_net(self, key: str) -> dict:
        if key == "G_ema":
            return export_canonical(self.G_ema, self.spec.generator)
        return export_canonical(self.nets[key], self.spec.networks[key])

    def _named_params(self, key: str) -> list:
        return [(name.removeprefix(PREFIX), param) for name, param in self.nets[key].named_parameters()]

    def _adam_slots(self, key: str) -> tuple:
        step, moments = 0, {}
        for name, param in self._named_params(key):
            slot = self.opts[key].state.get(param)
            if not slot:
                zeros = np.zeros(tuple(param.shape), np.float32)
                moments[name] = (zeros, zeros.copy())
                continue
            step = int(slot["step"].item())
            moments[name] = tuple(slot[m].detach().cpu().numpy().copy() for m in ("exp_avg", "exp_avg_sq"))
        return step, moments

    def _set_adam_slots(self, key: str, step: int, moments: dict) -> None:
        for name, param in self._named_params(key):
            m, v = moments[name]
            self.opts[key].state[param] = {"step": torch.tensor(float(step), dtype=torch.float32),
                                           "exp_avg": torch.zeros_like(param).copy_(self._floats(m)),
                                           "exp_avg_sq": torch.zeros_like(param).copy_(self._floats(v))}

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def _sample(self, net, z, labels, training: bool) -> np.ndarray:
        was_training = net.training
        net.train(training)
        try:
            return self._g_forward(net, z, labels).permute(0, 2, 3, 1).cpu().numpy()
        finally:
            net.train(was_training)

    @torch.no_grad()
    def _logits(self, images, context, training: bool) -> np.ndarray:
        self.D.train(training)
        try:
            return self.D(images, context).reshape(-1).cpu().numpy()
        finally:
            self.D.train()

    @staticmethod
    def _batch_norms(net) -> list:
        return [m for m in net.modules() if isinstance(m, BatchNorm)]

    @staticmethod
    @contextlib.contextmanager
    def _training_forwards(net):
        was_training = net.training
        net.train()
        try:
            with torch.no_grad():
                yield
        finally:
            net.train(was_training)
