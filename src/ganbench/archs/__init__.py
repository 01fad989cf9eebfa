"""Architecture registry: name -> function(channels, size) returning a GANSpec."""

from ganbench.archs.dcgan import dcgan
from ganbench.errors import GanbenchError

ARCHS = {"dcgan": dcgan}


def build_spec(name: str, channels: int, size: int = 32):
    try:
        factory = ARCHS[name]
    except KeyError:
        raise GanbenchError(f"unknown model {name!r} (choose from {', '.join(ARCHS)})") from None
    return factory(channels, size)
