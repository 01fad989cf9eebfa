"""Framework-free data layer: readers return numpy uint8 NHWC images and int64 labels."""

from ganbench.data.batches import BatchStream, pad_to, to_unit_range
from ganbench.data.catalog import DATASETS, FOLDER, LABELLED, default_image_size, gan_data, get_dataset, load

__all__ = ["BatchStream", "DATASETS", "FOLDER", "LABELLED", "default_image_size", "gan_data", "get_dataset", "load",
           "pad_to", "to_unit_range"]
