"""The shared GAN losses on torch tensors, and WGAN-GP's gradient penalty."""

from functools import partial
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ganbench import losses

OPS = SimpleNamespace(softplus=F.softplus, relu=F.relu, mean=torch.mean, sum=torch.sum, gram=lambda m: m @ m.T,
                      diag=torch.diagonal, reshape=torch.reshape, einsum=torch.einsum,
                      layout="NCHW")
d_loss = partial(losses.d_loss, OPS)
g_loss = partial(losses.g_loss, OPS)
ortho_penalty = partial(losses.ortho_penalty, OPS)


def input_gradients(critic, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """grad_x sum(critic(x)), per sample, itself differentiable in D's weights (double backward).
    critic: images -> logits, a training call of D (keyed like D's other calls of the step).
    scale: fp16's loss scale, which the inner gradient is taken under and divided by again (the
    recipe torch.amp gives for gradient penalties), so that it does not underflow."""
    x = x.detach().requires_grad_(True)
    total = critic(x).sum()
    (grad,) = torch.autograd.grad(total if scale is None else total * scale, x, create_graph=True)
    return grad if scale is None else grad / scale


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
                     scale: float | None = None) -> torch.Tensor:
    """mean over the batch of (|grad_x D(x_hat)|_2 - 1)^2, x_hat = alpha * real + (1 - alpha) * fake
    with one alpha per sample (Gulrajani et al. 2017, Algorithm 1). Differentiable in D's weights;
    critic and scale as in input_gradients."""
    alpha = alpha.reshape(-1, 1, 1, 1)
    grad = input_gradients(critic, alpha * real + (1.0 - alpha) * fake.detach(), scale)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
