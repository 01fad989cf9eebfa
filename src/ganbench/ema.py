"""The exponential moving average of G (Karras et al. 2018; BigGAN), the same rule in every backend.

After G update number t (1-based, counted by G's Adam steps, so resuming continues it), every
weight and buffer of G_ema (BatchNorm running statistics and spectral-norm vectors included, as
BigGAN-PyTorch and StudioGAN average them) becomes

    ema = w * ema + (1 - w) * g,   w = 0 while t <= ema_start (a copy of G), else ema_decay.

Sampling evaluates G_ema in eval mode, on its averaged BatchNorm statistics.
"""


def ema_weight(decay: float, start: int, g_updates: int) -> float:
    """w of the update above, after `g_updates` G updates."""
    return 0.0 if g_updates <= start else decay
