"""The architecture that a training configuration or a checkpoint describes (framework-free)."""

from ganbench import data
from ganbench.archs import SIZES, build_spec
from ganbench.config import TrainConfig


def model_size(config: TrainConfig) -> int:
    """The configured image size; else (0: automatic) the model's only size, or the dataset's default."""
    sizes = SIZES[config.model]
    return config.image_size or (sizes[0] if len(sizes) == 1 else data.default_image_size(config.dataset))


def spec_for_config(config: TrainConfig):
    channels = config.channels or data.get_dataset(config.dataset).image_shape[-1]
    return build_spec(config.model, channels, model_size(config), config.width)


def spec_from_metadata(meta: dict):
    """The spec of a checkpoint, from the resolved config in its metadata (validated first)."""
    return spec_for_config(TrainConfig.from_dict(meta["config"]).validate())
