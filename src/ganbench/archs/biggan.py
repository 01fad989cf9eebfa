"""BigGAN (Brock et al. 2019) at CIFAR-10 scale, as StudioGAN configures it (configs/CIFAR10/
BigGAN.yaml, models/big_resnet.py): the variant with published CIFAR-10 numbers. Facts and the
differences from BigGAN-PyTorch's CIFAR script: shared/reference/biggan-cifar10.md, README.

G: z of 80 in 4 chunks of 20 (hierarchical): chunk 0 -> SN-Dense -> 4x4x(4ch); three up-blocks
of 4ch (4 -> 8 -> 16 -> 32) whose conditional BatchNorms read concat(class embedding (128, shared,
no spectral norm), the block's z chunk); self-attention after the second block (16x16); BN, ReLU,
SN-Conv3x3, tanh. D: 2ch channels; optimized block (down), self-attention (16x16), block (down),
two plain blocks (8x8); ReLU, global sum pooling; logit = SN-Dense(h) + <SN-Embedding(y), h>.
Spectral norm on every conv and dense layer of both, eps 1e-6 (StudioGAN's), one power iteration
per training forward. Orthogonal init, zero biases. ch = 96 at width 1.

As in ganbench's other ResNets, G's block convolutions carry no bias (a BatchNorm follows each,
which cancels it); StudioGAN's have biases, a difference in parameters, not in the function class.
"""

from ganbench.archs.blocks import RELU, d_block, d_block_first, scaled
from ganbench.archs.spec import (
    Act, BatchNorm, CondBatchNorm, Conv, Dense, Embedding, GANSpec, GlobalPool, HierarchicalZ, Network, Projection,
    Reshape, Residual, SelfAttention, Upsample,
)

Z_DIM = 80
Z_CHUNKS = 4
EMBED_DIM = 128
NUM_CLASSES = 10
SN_EPS = 1e-6
BN_EPS = 1e-4
ORTHO = ("orthogonal", 1.0)
SIZES = (32,)


def sn_conv(name: str, cin: int, cout: int, kernel: int, bias: bool = True) -> Conv:
    return Conv(name, cin, cout, kernel, 1, kernel // 2, bias=bias, sn=True, init=ORTHO, sn_eps=SN_EPS)


def cond_bn(name: str, channels: int, cond: str) -> CondBatchNorm:
    return CondBatchNorm(name, channels, cond, EMBED_DIM + Z_DIM // Z_CHUNKS, eps=BN_EPS, sn=True, init=ORTHO,
                         sn_eps=SN_EPS)


def attention(name: str, channels: int) -> SelfAttention:
    return SelfAttention(name, channels, sn=True, init=ORTHO, sn_eps=SN_EPS)


def g_block(name: str, cin: int, cout: int, cond: str) -> Residual:
    """CondBN, ReLU, upsample, conv3, CondBN, ReLU, conv3; shortcut: upsample, conv1."""
    main = (cond_bn(f"{name}_bn1", cin, cond), RELU, Upsample(), sn_conv(f"{name}_c1", cin, cout, 3, bias=False),
            cond_bn(f"{name}_bn2", cout, cond), RELU, sn_conv(f"{name}_c2", cout, cout, 3, bias=False))
    return Residual(name, main, (Upsample(), sn_conv(f"{name}_sc", cin, cout, 1, bias=False)))


def biggan(channels: int = 3, size: int = 32, width: float = 1.0, num_classes: int = NUM_CLASSES) -> GANSpec:
    if size not in SIZES:
        raise ValueError(f"biggan is defined at 32x32, not {size}x{size}")
    g_ch, d_ch = scaled(4 * 96, width), scaled(2 * 96, width)
    chunk = Z_DIM // Z_CHUNKS
    g_layers = (
        Dense("fc", chunk, 4 * 4 * g_ch, sn=True, init=ORTHO, sn_eps=SN_EPS), Reshape((g_ch, 4, 4)),
        g_block("block1", g_ch, g_ch, "cond1"),
        g_block("block2", g_ch, g_ch, "cond2"),
        attention("attn", g_ch),
        g_block("block3", g_ch, g_ch, "cond3"),
        BatchNorm("bn_out", g_ch, eps=BN_EPS, init=("normal", 0.0)), RELU,
        sn_conv("conv_out", g_ch, channels, 3), Act("tanh"),
    )
    shared = Embedding("shared", num_classes, EMBED_DIM, init=ORTHO)
    d_layers = (
        d_block_sn_first("block1", channels, d_ch),
        attention("attn", d_ch),
        d_block_sn("block2", d_ch, d_ch, down=True),
        d_block_sn("block3", d_ch, d_ch, down=False),
        d_block_sn("block4", d_ch, d_ch, down=False),
        RELU, GlobalPool("sum"),
        Residual("head", (Dense("fc", d_ch, 1, sn=True, init=ORTHO, sn_eps=SN_EPS),),
                 (Projection("embed", num_classes, d_ch, sn=True, init=ORTHO, sn_eps=SN_EPS),)),
    )
    return GANSpec(
        "biggan", Z_DIM, (channels, size, size),
        Network("G", (Z_DIM,), g_layers, prelude=HierarchicalZ(Z_CHUNKS, shared)),
        Network("D", (channels, size, size), d_layers),
        num_classes=num_classes,
    )


def _with_biggan_sn(block: Residual) -> Residual:
    """The SNGAN blocks with BigGAN's conv init and spectral-norm eps."""
    import dataclasses

    def fix(layers):
        return tuple(dataclasses.replace(layer, init=ORTHO, sn_eps=SN_EPS) if isinstance(layer, Conv) else layer
                     for layer in layers)

    return dataclasses.replace(block, main=fix(block.main), shortcut=fix(block.shortcut))


def d_block_sn_first(name: str, cin: int, cout: int) -> Residual:
    return _with_biggan_sn(d_block_first(name, cin, cout, sn=True))


def d_block_sn(name: str, cin: int, cout: int, down: bool) -> Residual:
    return _with_biggan_sn(d_block(name, cin, cout, down, sn=True))
