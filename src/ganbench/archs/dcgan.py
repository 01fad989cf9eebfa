"""DCGAN (Radford et al. 2016) at 32x32, as the seed article intended it, with its bugs fixed.

Fixes to the seed's code: BatchNorm2d (not BatchNorm1d) after the 4x4x512 reshape; the
discriminator's Linear is sized 128*8*8 for its 8x8 map (not 128*16*16); the TensorFlow generator
emits 32x32 images (not 56x56); D returns a logit (no sigmoid) for a numerically stable loss.
Convolutions followed by BatchNorm carry no bias (BN's beta makes it redundant).
"""

from ganbench.archs.spec import Act, BatchNorm, Conv, ConvT, Dense, Flatten, GANSpec, Network, Reshape

Z_DIM = 100


def dcgan(channels: int = 1, size: int = 32, width: float = 1.0) -> GANSpec:
    if size != 32:
        raise ValueError("dcgan is defined at 32x32")
    if width != 1.0:
        raise ValueError("dcgan has no width multiplier")
    relu = Act("relu")
    lrelu = Act("leaky_relu", 0.2)
    generator = Network(
        "G",
        (Z_DIM,),
        (
            Dense("fc", Z_DIM, 4 * 4 * 512, bias=False),
            Reshape((512, 4, 4)),
            BatchNorm("bn0", 512),
            relu,
            ConvT("deconv1", 512, 256, 4, 2, 1, bias=False),
            BatchNorm("bn1", 256),
            relu,
            ConvT("deconv2", 256, 128, 4, 2, 1, bias=False),
            BatchNorm("bn2", 128),
            relu,
            ConvT("deconv3", 128, channels, 4, 2, 1, bias=True),
            Act("tanh"),
        ),
    )
    discriminator = Network(
        "D",
        (channels, 32, 32),
        (
            Conv("conv1", channels, 64, 4, 2, 1, bias=True),
            lrelu,
            Conv("conv2", 64, 128, 4, 2, 1, bias=False),
            BatchNorm("bn2", 128),
            lrelu,
            Flatten(),
            Dense("fc", 128 * 8 * 8, 1, bias=True),
        ),
    )
    return GANSpec("dcgan", Z_DIM, (channels, 32, 32), generator, discriminator)
