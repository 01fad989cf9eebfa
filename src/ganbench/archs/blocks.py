"""Residual blocks shared by the ResNet GANs of SNGAN (Miyato et al. 2018, Table 4) and WGAN-GP
(Gulrajani et al. 2017), which use the same block structure.

Biases that a following BatchNorm cancels are left out: their gradient is zero up to rounding,
which Adam would normalise into full-size random steps. Convolutions in blocks are initialised xavier-uniform with gain sqrt(2), shortcuts and heads with
gain 1, as the SNGAN reference code does. A downsampling shortcut pools before its 1x1 conv
(WGAN-GP's order); SNGAN's code convolves first. Both are linear, so they are the same function.
"""

import math

from ganbench.archs.spec import Act, AvgPool, BatchNorm, Conv, Residual, Upsample

BLOCK_INIT = ("xavier_uniform", math.sqrt(2.0))
HEAD_INIT = ("xavier_uniform", 1.0)
RELU = Act("relu")


def conv3(name: str, cin: int, cout: int, sn: bool, init=BLOCK_INIT, bias: bool = True) -> Conv:
    return Conv(name, cin, cout, 3, 1, 1, bias=bias, sn=sn, init=init)


def conv1(name: str, cin: int, cout: int, sn: bool, bias: bool = True) -> Conv:
    return Conv(name, cin, cout, 1, 1, 0, bias=bias, sn=sn, init=HEAD_INIT)


def bn(name: str, channels: int) -> BatchNorm:
    return BatchNorm(name, channels, init=("normal", 0.0))  # gamma 1, beta 0


def g_block_up(name: str, cin: int, cout: int) -> Residual:
    """BN, ReLU, upsample, conv3, BN, ReLU, conv3; shortcut: upsample, conv1. No biases: every
    generator block output feeds a BatchNorm, which cancels them."""
    main = (bn(f"{name}_bn1", cin), RELU, Upsample(), conv3(f"{name}_c1", cin, cout, False, bias=False),
            bn(f"{name}_bn2", cout), RELU, conv3(f"{name}_c2", cout, cout, False, bias=False))
    return Residual(name, main, (Upsample(), conv1(f"{name}_sc", cin, cout, False, bias=False)))


def d_block(name: str, cin: int, cout: int, down: bool, sn: bool) -> Residual:
    """ReLU, conv3 (cin -> cin), ReLU, conv3 (cin -> cout), [pool]; a learnt shortcut when the
    block changes channels or resolution."""
    pool = (AvgPool(),) if down else ()
    main = (RELU, conv3(f"{name}_c1", cin, cin, sn), RELU, conv3(f"{name}_c2", cin, cout, sn), *pool)
    shortcut = (*pool, conv1(f"{name}_sc", cin, cout, sn)) if down or cin != cout else ()
    return Residual(name, main, shortcut)


def d_block_first(name: str, cin: int, cout: int, sn: bool) -> Residual:
    """The discriminator's first block, without the leading ReLU on the image ("optimized block")."""
    main = (conv3(f"{name}_c1", cin, cout, sn), RELU, conv3(f"{name}_c2", cout, cout, sn), AvgPool())
    return Residual(name, main, (AvgPool(), conv1(f"{name}_sc", cin, cout, sn)))


def scaled(channels: int, width: float) -> int:
    """Channel count under the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))
