"""GAN losses on D's logits [B, 1] (batch means), and WGAN-GP's gradient penalty."""

import torch
import torch.nn.functional as F


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind in ("ns", "minimax"):  # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "wgan-gp":  # the penalty is added by the caller
        return fake.mean() - real.mean()
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":  # -log sigmoid(D(G(z)))
        return F.softplus(-fake).mean()
    if kind == "minimax":  # log(1 - sigmoid(D(G(z))))
        return -F.softplus(fake).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """mean over the batch of (|grad_x D(x_hat)|_2 - 1)^2, x_hat = alpha * real + (1 - alpha) * fake
    with one alpha per sample (Gulrajani et al. 2017, Algorithm 1). Differentiable in D's weights."""
    alpha = alpha.reshape(-1, 1, 1, 1)
    x_hat = (alpha * real + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
