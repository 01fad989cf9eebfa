"""PyTorch backend (NCHW, eager by default)."""
