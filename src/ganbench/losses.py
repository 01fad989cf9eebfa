"""The GAN losses on D's logits (batch means), written once over a backend's tensor ops.

`ops` needs softplus, relu, mean and sum (of all elements), gram (M M^T) and diag (and reshape,
einsum and layout for the transforms at the D-call seam, ganbench.augment). The gradient
penalties' input gradients are per backend (input_gradients): differentiating through D is
framework work.
"""


# losses whose G loss reads D's logits on reals paired with the fakes
PAIRED = ("rpgan",)


def d_loss(ops, kind: str, real, fake):
    if kind in ("ns", "minimax"):  # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
        return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))
    if kind == "hinge":
        return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))
    if kind == "wgan-gp":  # the penalty is added by the caller
        return ops.mean(fake) - ops.mean(real)
    if kind == "ls":  # least squares, real 1 and fake 0 (Mao et al. 2017, eq. 9 with a=0, b=c=1)
        return 0.5 * ops.mean((real - 1.0) ** 2) + 0.5 * ops.mean(fake**2)
    if kind == "rpgan":  # relativistic pairing, real i with fake i: softplus(-(D(x) - D(G(z))))
        return ops.mean(ops.softplus(fake - real))
    raise ValueError(f"unknown loss {kind!r}")


def g_loss(ops, kind: str, fake, real=None):
    """G's loss on D's logits of its fakes (and, for a PAIRED loss, of the reals paired with them)."""
    if kind == "ns":  # -log sigmoid(D(G(z)))
        return ops.mean(ops.softplus(-fake))
    if kind == "minimax":  # log(1 - sigmoid(D(G(z))))
        return -ops.mean(ops.softplus(fake))
    if kind in ("hinge", "wgan-gp"):
        return -ops.mean(fake)
    if kind == "ls":
        return 0.5 * ops.mean((fake - 1.0) ** 2)
    if kind == "rpgan":
        return ops.mean(ops.softplus(real - fake))
    raise ValueError(f"unknown loss {kind!r}")


def zero_centred_penalty(ops, grads):
    """R1 (on reals) or R2 (on fakes), Mescheder et al. 2018: the batch mean of |grad_x D(x)|^2,
    grads the per-sample input gradients from the backend's input_gradients."""
    return ops.sum(grads * grads) / grads.shape[0]  # the per-sample sums' mean (batch size static)


def lecam_penalty(ops, real, fake, ema_real, ema_fake):
    """LeCam regularisation (Tseng et al. 2021): D's outputs on reals kept from rising above the
    moving average of its outputs on fakes, and on fakes from falling below that on reals:
    mean(relu(D(x) - ema_fake)^2) + mean(relu(ema_real - D(G(z)))^2)."""
    return ops.mean(ops.relu(real - ema_fake) ** 2) + ops.mean(ops.relu(ema_real - fake) ** 2)


def consistency_penalty(ops, logits, moved_logits):
    """Consistency regularisation (Zhang et al. 2020; balanced, on reals and on fakes, Zhao et al.
    2021): the mean squared change of D's output when its input is moved by a semantics-preserving
    transform; both outputs are differentiated."""
    return ops.mean((logits - moved_logits) ** 2)


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
