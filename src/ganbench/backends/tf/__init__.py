"""TensorFlow backend (NHWC, tf.function graphs)."""

import importlib.util
import os

# TensorFlow's C++ start-up banners (CPU features, oneDNN notes) drown the CLI's output;
# a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Triton (installed with CUDA builds of PyTorch) segfaults when its native library loads after
# TensorFlow's, which torch's optimisers trigger lazily. Loading it first lets both frameworks
# share one process (the parity tests and cross-backend sampling need that).
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401
