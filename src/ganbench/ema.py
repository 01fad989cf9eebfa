"""The exponential moving average of G (Karras et al. 2018; BigGAN), the same rule in every backend.

After G update number t (1-based, counted by G's Adam steps, so resuming continues it), every
weight and buffer of G_ema (BatchNorm running statistics and spectral-norm vectors included, as
BigGAN-PyTorch and StudioGAN average them) becomes

    ema = w * ema + (1 - w) * g,   w = 0 while t <= ema_start (a copy of G), else ema_decay,

and then each averaged spectral-norm vector (u, v) is scaled back to unit length. An average of
unit vectors that turned during training is shorter than 1, and eval-mode spectral norm divides
by sigma = u . W v with the stored u and v: unscaled, sigma shrank and G_ema's layers blew up
(saturated samples in a BigGAN run); scaled, sigma is again a power-iteration estimate.

Sampling evaluates G_ema in eval mode, on its averaged BatchNorm statistics, or on standing
statistics (`--standing-stats N`, BigGAN's remedy for averaged statistics that belong to no single
set of weights): the running mean and variance of every BatchNorm replaced by their plain average
over N training-mode forwards of the sampling generator, batch k entering with momentum 1/(k+1).
"""

from ganbench.archs.spec import Network, sn_eps, spectrally_normalized
from ganbench.precision import python_where


def ema_weight(decay: float, start: int, g_updates, where=python_where, exact=float):
    """w of the update above, after `g_updates` G updates; where/exact: a backend's conditional and
    its Python float as a scalar (a graph's, when g_updates is a tensor)."""
    return where(g_updates <= start, exact(0.0), exact(decay))


def sn_vectors(net: Network) -> dict:
    """Canonical name of every spectral-norm vector of the network -> its layer's eps."""
    return {f"{layer.name}.{vector}": sn_eps(layer) for layer in net.leaves() if spectrally_normalized(layer)
            for vector in ("sn_u", "sn_v")}


def sampling_generator(gan):
    """The network a backend GAN samples with: G_ema when it has one and use_ema, else G."""
    return gan.G_ema if gan.G_ema is not None and gan.use_ema else gan.G


def standing_momentum(k: int) -> float:
    """BatchNorm momentum of standing-statistics batch k (0-based): the running statistics end as
    the plain average of the batches' statistics."""
    return 1.0 / (k + 1)
