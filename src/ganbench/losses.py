"""The GAN losses on D's logits (batch means), written once over a backend's tensor ops.

`ops` needs softplus, relu, mean and sum (of all elements), gram (M M^T) and diag. WGAN-GP's
gradient penalty is per backend: it differentiates through D, which is framework work.
"""


def d_loss(ops, kind: str, real, fake):
    if kind in ("ns", "minimax"):  # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
        return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))
    if kind == "hinge":
        return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))
    if kind == "wgan-gp":  # the penalty is added by the caller
        return ops.mean(fake) - ops.mean(real)
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(ops, kind: str, fake):
    if kind == "ns":  # -log sigmoid(D(G(z)))
        return ops.mean(ops.softplus(-fake))
    if kind == "minimax":  # log(1 - sigmoid(D(G(z))))
        return -ops.mean(ops.softplus(fake))
    if kind in ("hinge", "wgan-gp"):
        return -ops.mean(fake)
    raise ValueError(f"unknown loss {kind!r}")


def ortho_penalty(ops, matrices):
    """BigGAN's orthogonal regularisation (Brock et al. 2019, eq. 3) as a loss term:
    1/2 sum over the weight matrices W (rows: output units) of ||W W^T * (1 - I)||_F^2, whose
    gradient 2 ((W W^T) * (1 - I)) W is the one BigGAN-PyTorch adds to G's gradients."""
    total = 0.0
    for matrix in matrices:
        gram = ops.gram(matrix)
        total = total + 0.5 * (ops.sum(gram * gram) - ops.sum(ops.diag(gram) ** 2))
    return total


def ortho_regularised(net) -> list:
    """Canonical names of the weights ortho_penalty covers: every parameter of 2 or more dimensions
    of the network (a spec Network), the prelude's shared class embedding exempt (as BigGAN-PyTorch
    exempts G.shared)."""
    exempt = {f"{net.prelude.embedding.name}.weight"} if net.prelude else set()
    return [name for name, shape in net.param_shapes().items() if len(shape) >= 2 and name not in exempt]
