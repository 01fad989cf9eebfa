"""The two official DCGAN examples, layer for layer, so that users can compare against them.

- pytorch/examples `dcgan/main.py` (64x64, ngf = ndf = 64, nz = 100): bias-free convolutions,
  N(0, 0.02) weights, BN gamma N(1, 0.02). D's final Sigmoid is dropped: ganbench's losses take
  logits (BCE on a sigmoid equals softplus on the logit, without the sigmoid's saturation).
- TensorFlow's DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan, 28x28, noise 100):
  Keras' defaults written out: glorot-uniform kernels, zero biases, BN eps 1e-3 and momentum 0.99
  (0.01 in PyTorch's convention) with gamma 1, LeakyReLU 0.3, 'same' padding as explicit
  (before, after) pairs, dropout 0.3 in D. Keras' Reshape fills (7, 7, 256) in HWC order where the
  spec's is CHW: a fixed permutation of the Dense units, the same function class.
"""

from ganbench.archs.spec import Act, BatchNorm, Conv, ConvT, Dense, Dropout, Flatten, GANSpec, Network, Reshape

Z_DIM = 100
GLOROT = ("xavier_uniform", 1.0)
KERAS_BN = {"eps": 1e-3, "momentum": 0.01, "init": ("normal", 0.0)}
# TensorFlow's 'same' for a 5x5 kernel at stride 2 on an even size: 3 pixels, 1 before and 2 after.
SAME_5_STRIDE_2 = (1, 2)


def dcgan_pytorch_example(channels: int = 3, size: int = 64, width: float = 1.0) -> GANSpec:
    if width != 1.0:
        raise ValueError("dcgan_pytorch_example has no width multiplier")
    ngf = ndf = 64
    relu, lrelu = Act("relu"), Act("leaky_relu", 0.2)
    g_layers = [Reshape((Z_DIM, 1, 1)), ConvT("deconv0", Z_DIM, ngf * 8, 4, 1, 0, bias=False)]
    widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        g_layers += [BatchNorm(f"bn{i}", cin), relu, ConvT(f"deconv{i + 1}", cin, cout, 4, 2, 1, bias=False)]
    g_layers += [BatchNorm("bn3", ngf), relu, ConvT("deconv4", ngf, channels, 4, 2, 1, bias=False), Act("tanh")]
    d_layers = [Conv("conv0", channels, ndf, 4, 2, 1, bias=False), lrelu]
    widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        d_layers += [Conv(f"conv{i + 1}", cin, cout, 4, 2, 1, bias=False), BatchNorm(f"bn{i + 1}", cout), lrelu]
    d_layers += [Conv("conv4", ndf * 8, 1, 4, 1, 0, bias=False), Flatten()]
    return GANSpec(
        "dcgan_pytorch_example", Z_DIM, (channels, 64, 64),
        Network("G", (Z_DIM,), tuple(g_layers)), Network("D", (channels, 64, 64), tuple(d_layers)),
    )


def dcgan_tf_tutorial(channels: int = 1, size: int = 28, width: float = 1.0) -> GANSpec:
    if width != 1.0:
        raise ValueError("dcgan_tf_tutorial has no width multiplier")
    lrelu = Act("leaky_relu", 0.3)
    generator = Network("G", (Z_DIM,), (
        Dense("fc", Z_DIM, 7 * 7 * 256, bias=False, init=GLOROT),
        BatchNorm("bn0", 7 * 7 * 256, **KERAS_BN),  # per feature of the flat Dense output
        lrelu,
        Reshape((256, 7, 7)),
        ConvT("deconv1", 256, 128, 5, 1, 2, bias=False, init=GLOROT),
        BatchNorm("bn1", 128, **KERAS_BN),
        lrelu,
        ConvT("deconv2", 128, 64, 5, 2, SAME_5_STRIDE_2, bias=False, init=GLOROT),
        BatchNorm("bn2", 64, **KERAS_BN),
        lrelu,
        ConvT("deconv3", 64, channels, 5, 2, SAME_5_STRIDE_2, bias=False, init=GLOROT),
        Act("tanh"),
    ))
    discriminator = Network("D", (channels, 28, 28), (
        Conv("conv1", channels, 64, 5, 2, SAME_5_STRIDE_2, init=GLOROT),
        lrelu,
        Dropout("drop1", 0.3),
        Conv("conv2", 64, 128, 5, 2, SAME_5_STRIDE_2, init=GLOROT),
        lrelu,
        Dropout("drop2", 0.3),
        Flatten(),
        Dense("fc", 128 * 7 * 7, 1, init=GLOROT),
    ))
    return GANSpec("dcgan_tf_tutorial", Z_DIM, (channels, 28, 28), generator, discriminator)
