"""Architecture registry: name -> function(channels, size, width) returning a GANSpec."""

from ganbench.archs.biggan import biggan
from ganbench.archs.dcgan import dcgan
from ganbench.archs.official import dcgan_pytorch_example, dcgan_tf_tutorial
from ganbench.archs.sngan import sngan_cnn, sngan_resnet
from ganbench.archs.wgan_gp import wgan_gp_resnet
from ganbench.errors import GanbenchError

ARCHS = {"dcgan": dcgan, "dcgan_pytorch_example": dcgan_pytorch_example, "dcgan_tf_tutorial": dcgan_tf_tutorial,
         "sngan_cnn": sngan_cnn, "sngan_resnet": sngan_resnet, "wgan_gp_resnet": wgan_gp_resnet, "biggan": biggan}
CONDITIONAL = ("biggan",)  # class-conditional models: they train on labelled data
SIZES = {"dcgan": (32,), "dcgan_pytorch_example": (64,), "dcgan_tf_tutorial": (28,), "sngan_cnn": (32, 48),
         "sngan_resnet": (32, 48), "wgan_gp_resnet": (32,), "biggan": (32,)}


def build_spec(name: str, channels: int, size: int = 0, width: float = 1.0):
    """size 0: the model's first (for most, only) size."""
    try:
        factory = ARCHS[name]
    except KeyError:
        raise GanbenchError(f"unknown model {name!r} (choose from {', '.join(ARCHS)})") from None
    size = size or SIZES[name][0]
    check_size(name, size)
    try:
        return factory(channels, size, width)
    except ValueError as exc:
        raise GanbenchError(str(exc)) from None


def check_size(name: str, size: int) -> None:
    if size not in SIZES[name]:
        raise GanbenchError(f"{name} is defined at {' and '.join(f'{s}x{s}' for s in SIZES[name])}, not {size}x{size}")
