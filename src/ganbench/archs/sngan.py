"""SNGAN (Miyato et al. 2018): the standard CNN (Table 3) and the ResNets (Table 4), for
32x32 (CIFAR-10) and 48x48 (STL-10) images. Every discriminator weight is spectrally normalised.

A choice Table 3 leaves open: the CNN generator's BatchNorm after the dense layer normalises per
channel, after the reshape (as every other BN here).
"""

from ganbench.archs.blocks import HEAD_INIT, RELU, bn, conv3, d_block, d_block_first, g_block_up, scaled
from ganbench.archs.spec import Act, Conv, ConvT, Dense, Flatten, GANSpec, GlobalPool, Network, Reshape

Z_DIM = 128
SIZES = (32, 48)


def _bottom(size: int, arch: str) -> int:
    if size not in SIZES:
        raise ValueError(f"{arch} is defined at 32x32 (CIFAR-10) and 48x48 (STL-10), not {size}x{size}")
    return size // 8


def sngan_cnn(channels: int = 3, size: int = 32, width: float = 1.0) -> GANSpec:
    m = _bottom(size, "sngan_cnn")
    c = lambda n: scaled(n, width)  # noqa: E731
    relu, lrelu = Act("relu"), Act("leaky_relu", 0.1)
    g_layers = [Dense("fc", Z_DIM, m * m * c(512), bias=False), Reshape((c(512), m, m)), bn("bn0", c(512)), relu]
    for i, (cin, cout) in enumerate(((512, 256), (256, 128), (128, 64)), start=1):
        g_layers += [ConvT(f"deconv{i}", c(cin), c(cout), 4, 2, 1, bias=False), bn(f"bn{i}", c(cout)), relu]
    g_layers += [Conv("conv_out", c(64), channels, 3, 1, 1), Act("tanh")]

    d_layers, cin = [], channels
    for i, (cout, kernel, stride) in enumerate(
        ((64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1)), start=1
    ):
        d_layers += [Conv(f"conv{i}", cin, c(cout), kernel, stride, 1, sn=True), lrelu]
        cin = c(cout)
    d_layers += [Flatten(), Dense("fc", c(512) * m * m, 1, sn=True)]
    return GANSpec(
        "sngan_cnn", Z_DIM, (channels, size, size),
        Network("G", (Z_DIM,), tuple(g_layers)),
        Network("D", (channels, size, size), tuple(d_layers)),
    )


def sngan_resnet(channels: int = 3, size: int = 32, width: float = 1.0) -> GANSpec:
    m = _bottom(size, "sngan_resnet")
    c = lambda n: scaled(n, width)  # noqa: E731
    if size == 32:  # Table 4 (a, b): CIFAR-10
        g_channels, d_channels = (256, 256, 256, 256), (128, 128, 128, 128)
        d_down = (True, True, False, False)
    else:  # Table 4 (c, d): STL-10
        g_channels, d_channels = (512, 256, 128, 64), (64, 128, 256, 512, 1024)
        d_down = (True, True, True, True, False)
    g_layers = [Dense("fc", Z_DIM, m * m * c(g_channels[0]), bias=False, init=HEAD_INIT), Reshape((c(g_channels[0]), m, m))]
    for i in range(1, len(g_channels)):
        g_layers.append(g_block_up(f"block{i}", c(g_channels[i - 1]), c(g_channels[i])))
    g_layers += [bn("bn_out", c(g_channels[-1])), RELU,
                 conv3("conv_out", c(g_channels[-1]), channels, False, HEAD_INIT), Act("tanh")]

    d_layers = [d_block_first("block1", channels, c(d_channels[0]), sn=True)]
    for i in range(1, len(d_channels)):
        d_layers.append(d_block(f"block{i + 1}", c(d_channels[i - 1]), c(d_channels[i]), d_down[i], sn=True))
    d_layers += [RELU, GlobalPool("sum"), Dense("fc", c(d_channels[-1]), 1, sn=True, init=HEAD_INIT)]
    return GANSpec(
        "sngan_resnet", Z_DIM, (channels, size, size),
        Network("G", (Z_DIM,), tuple(g_layers)),
        Network("D", (channels, size, size), tuple(d_layers)),
    )
