"""Framework-neutral training loop and run logging."""
