"""WGAN-GP's CIFAR-10 ResNet (Gulrajani et al. 2017, appendix; gan_cifar_resnet.py): 128 channels
throughout, three upsampling blocks in G; a critic of four blocks (two downsampling) with no
normalisation at all (BatchNorm would break the per-sample gradient penalty), mean pooling."""

from ganbench.archs.blocks import HEAD_INIT, RELU, bn, conv3, d_block, d_block_first, g_block_up, scaled
from ganbench.archs.spec import Act, Dense, GANSpec, GlobalPool, Network, Reshape

Z_DIM = 128


def wgan_gp_resnet(channels: int = 3, size: int = 32, width: float = 1.0) -> GANSpec:
    if size != 32:
        raise ValueError(f"wgan_gp_resnet is defined at 32x32, not {size}x{size}")
    c = scaled(128, width)
    generator = Network("G", (Z_DIM,), (
        Dense("fc", Z_DIM, 4 * 4 * c, bias=False, init=HEAD_INIT),
        Reshape((c, 4, 4)),
        g_block_up("block1", c, c),
        g_block_up("block2", c, c),
        g_block_up("block3", c, c),
        bn("bn_out", c), RELU,
        conv3("conv_out", c, channels, False, HEAD_INIT),
        Act("tanh"),
    ))
    critic = Network("D", (channels, 32, 32), (
        d_block_first("block1", channels, c, sn=False),
        d_block("block2", c, c, down=True, sn=False),
        d_block("block3", c, c, down=False, sn=False),
        d_block("block4", c, c, down=False, sn=False),
        RELU, GlobalPool("mean"),
        Dense("fc", c, 1, init=HEAD_INIT),
    ))
    return GANSpec("wgan_gp_resnet", Z_DIM, (channels, 32, 32), generator, critic)
