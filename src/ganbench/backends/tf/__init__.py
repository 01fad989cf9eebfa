"""TensorFlow backend (NHWC, tf.function graphs)."""

import importlib.util

# Triton (installed with CUDA builds of PyTorch) segfaults when its native library loads after
# TensorFlow's, which torch's optimisers trigger lazily. Loading it first lets both frameworks
# share one process (the parity tests and cross-backend sampling need that).
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401
