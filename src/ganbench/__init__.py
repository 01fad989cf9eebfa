"""ganbench: GAN training, sampling and evaluation with identical PyTorch and TensorFlow backends.

Importing the package imports no deep-learning framework; backends load lazily
(see ganbench.backends.get_backend).
"""

__version__ = "0.1.0"
