"""torch.distributed for ganbench's data-parallel step: the process group, the gradient average
at the step's one gradient point, BatchNorm over the global batch, and the collective decisions.

Why not DistributedDataParallel: its reducer fires on one backward per forward, and a ganbench
step calls D several times before a backward (real, fake, the penalty's interpolates), backs G's
loss through a frozen D, and takes the WGAN-GP penalty's double backward, which DDP does not
support (torch.autograd.grad with create_graph). The gradients are averaged instead with one
all-reduce per network and update, just before Adam: the one point every step passes through.
"""

import atexit

import torch
import torch.distributed as dist

from ganbench.distributed import World


def device_for(world: World) -> torch.device:
    """cuda:<local rank> on a GPU machine, else the CPU: never implied by a default device."""
    return torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")


class Collective:
    """The process group of a torchrun world (gloo on the CPU, NCCL on GPUs), joined once:
    MASTER_ADDR and MASTER_PORT come from the launcher."""

    def __init__(self, world: World):
        self.world = world
        self.device = device_for(world)
        if not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo",
                                    rank=world.rank, world_size=world.size)
            # left to the interpreter's exit, gloo's threads can outlive Python ("terminate called
            # without an active exception", seen twice in benchmark workers): the group ends first
            atexit.register(self.close)

    def max(self, values: list) -> list:
        """The elementwise maximum of every rank's `values` (Python floats)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def mean(self, values: list) -> list:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return (tensor / self.world.size).tolist()

    def barrier(self) -> None:
        dist.barrier()

    def close(self, together: bool = False) -> None:
        """Leave the process group (together: after every rank has arrived, at a run's end)."""
        if dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def average_gradients(parameters, world_size: int) -> None:
    """Every parameter's .grad becomes the mean over the replicas (one flat all-reduce)."""
    params = list(parameters)
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    flat = torch.cat([param.grad.reshape(-1) for param in params])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for param in params:  # copy_ keeps each gradient's memory format (channels_last)
        param.grad.copy_(flat[offset:offset + param.numel()].view(param.shape))
        offset += param.numel()


class SumOverReplicas(torch.autograd.Function):
    """The sum of a tensor over the replicas; its gradient is the sum of the replicas' gradients
    (each replica's loss depends on every replica's input through the sum)."""

    @staticmethod
    def forward(ctx, x):
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        return SumOverReplicas.apply(grad)


def synchronised_batch_norm(bn, x: torch.Tensor, world_size: int) -> torch.Tensor:
    """BatchNorm in training mode over the global batch: the replicas all-reduce their sums (the
    gradient flows back through the all-reduce), so N replicas normalise as one process does.
    Two passes (the mean, then the centred squares), as a single process's BatchNorm; running
    statistics from the global count, the variance unbiased."""
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = x.numel() // x.shape[1] * world_size  # even shards: the same on every replica
    mean = SumOverReplicas.apply(x.sum(dims)) / count
    centred = x - mean.reshape(shape)
    var = SumOverReplicas.apply((centred * centred).sum(dims)) / count
    y = centred * torch.rsqrt(var + bn.eps).reshape(shape)
    if bn.affine:
        y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
    with torch.no_grad():
        bn.running_mean.lerp_(mean.detach(), bn.momentum)
        bn.running_var.lerp_(var.detach() * (count / (count - 1)), bn.momentum)
        bn.num_batches_tracked.add_(1)
    return y
