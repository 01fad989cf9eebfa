"""TensorFlow backend (NHWC, tf.function graphs)."""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile

# TensorFlow's C++ start-up notes (CPU features, oneDNN) drown the CLI's output. Level 2 hides
# INFO and WARNING; a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow 2.21 writes its oneDNN note through absl before absl reads that level, once per
# native library, so the import itself is filtered the same way.
NATIVE_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
ABSL_PREINIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
LEVELS = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0..3 hides the letters before its index


def hidden(line: str, min_level: int) -> bool:
    """True for a native log line below TF_CPP_MIN_LOG_LEVEL (and absl's note that precedes them)."""
    if line.startswith(ABSL_PREINIT):
        return min_level >= 1
    match = NATIVE_LOG_LINE.match(line)
    return bool(match) and LEVELS.index(match.group(1)) < min_level


@contextlib.contextmanager
def native_stderr_filtered(min_level: int):
    """Capture file descriptor 2 (C++ writes there directly) and replay what is not hidden."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not hidden(line, min_level)))


def min_log_level() -> int:
    try:
        return int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        return 0


# Triton (installed with CUDA builds of PyTorch) segfaults when its native library loads after
# TensorFlow's, which torch's optimisers trigger lazily. Loading it first lets both frameworks
# share one process (the parity tests and cross-backend sampling need that).
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
    with native_stderr_filtered(min_log_level()):
        import tensorflow  # noqa: F401
