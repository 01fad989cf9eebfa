"""Like-for-like framework benchmark: each configuration runs in its own process."""
