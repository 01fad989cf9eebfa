"""Training presets: JSON files of TrainConfig fields that differ from the defaults (deltas only).
A key starting with "_" is a comment. `--preset NAME` reads presets/NAME.json (hyphens in NAME
read as underscores: dcgan-tf-tutorial is dcgan_tf_tutorial); a path works too."""

from importlib import resources
from pathlib import Path

from ganbench import validation
from ganbench.config import TrainConfig
from ganbench.errors import GanbenchError


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def read_preset(name: str) -> dict:
    """The preset's fields (comments dropped), type-checked against TrainConfig."""
    path = Path(name)
    if path.suffix == ".json":
        if not path.is_file():
            raise GanbenchError(f"preset file {path} not found")
        fields = validation.read_json(path, "preset")
    elif name.replace("-", "_") in preset_names():
        text = resources.files(__package__).joinpath(f"{name.replace('-', '_')}.json").read_text()
        fields = validation.parse_json(text, f"preset {name}")
    else:
        raise GanbenchError(f"unknown preset {name!r} (choose from {', '.join(preset_names())}, or give a .json file)")
    validation.json_object(fields, f"preset {name}", "a preset")
    fields = {k: v for k, v in fields.items() if not k.startswith("_")}
    try:
        TrainConfig.from_dict(fields)  # unknown keys and wrong types fail here, naming the key
    except GanbenchError as exc:
        raise GanbenchError(f"preset {name}: {exc}") from None
    return fields


def apply_preset(config: TrainConfig, name: str) -> TrainConfig:
    return config.replace(**read_preset(name))
