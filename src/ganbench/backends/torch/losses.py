"""The shared GAN losses on torch tensors, and WGAN-GP's gradient penalty."""

from functools import partial
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ganbench import losses

OPS = SimpleNamespace(softplus=F.softplus, relu=F.relu, mean=torch.mean, sum=torch.sum, gram=lambda m: m @ m.T,
                      diag=torch.diagonal, reshape=torch.reshape,
                      layout="NCHW")
d_loss = partial(losses.d_loss, OPS)
g_loss = partial(losses.g_loss, OPS)
ortho_penalty = partial(losses.ortho_penalty, OPS)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                     scale: float | None = None) -> torch.Tensor:
    """mean over the batch of (|grad_x D(x_hat)|_2 - 1)^2, x_hat = alpha * real + (1 - alpha) * fake
    with one alpha per sample (Gulrajani et al. 2017, Algorithm 1). Differentiable in D's weights.
    critic: images -> logits, a training call of D (keyed like D's other calls of the step).
    scale: fp16's loss scale, which the inner gradient is taken under and divided by again (the
    recipe torch.amp gives for gradient penalties), so that it does not underflow."""
    alpha = alpha.reshape(-1, 1, 1, 1)
    x_hat = (alpha * real + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    total = critic(x_hat).sum()
    (grad,) = torch.autograd.grad(total if scale is None else total * scale, x_hat, create_graph=True)
    if scale is not None:
        grad = grad / scale
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
