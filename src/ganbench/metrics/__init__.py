"""One yardstick for both backends: uint8 images in, numbers out."""
