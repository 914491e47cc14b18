"""Pre-flight checks of a base model folder, run before a job is created.

They read `config.json` and list files, never load weights, so a launch on a
folder that is not a usable model is refused at once with a message naming
the setting, in the UI, the API and the CLI alike, instead of failing in the
worker after a run was recorded and queued.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import ConfigError

# Any one of these is enough for AutoTokenizer (fast tokenizer, WordPiece, BPE or sentencepiece vocabularies).
TOKENIZER_VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                         "tokenizer.model")


def check_base_model(folder: str | Path, max_seq_length: int) -> None:
    """Raise ConfigError (field base_model or max_seq_length) unless `folder` holds weights, a tokenizer and an
    architecture config whose positions fit `max_seq_length`. An adapter layout (a LoRA-style or bottleneck run)
    must also still have the base model it was trained on."""
    from .model_store import architecture_folder, weight_files

    folder = Path(folder)
    if not weight_files(folder):
        raise ConfigError("base_model", f"{folder} has no model weights (model.safetensors); "
                                        "were they deleted, or is this not a model folder?")
    if not any((folder / name).exists() for name in TOKENIZER_VOCAB_FILES):
        raise ConfigError("base_model", f"{folder} has no tokenizer (tokenizer.json or vocab.txt)")
    try:
        arch = architecture_folder(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("base_model", f"{folder}: unreadable studio_model.json ({exc})") from None
    if arch != folder and not weight_files(arch):
        raise ConfigError("base_model", f"{folder} is an adapter on {arch}, and that base model is missing "
                                        "(was it deleted?)")
    config = read_model_config(arch / "config.json")
    limit = config.get("max_position_embeddings")
    if isinstance(limit, int) and max_seq_length > limit:
        raise ConfigError("max_seq_length", f"{max_seq_length} exceeds the base model's {limit} positions")


def read_model_config(config_file: Path) -> dict:
    """The parsed config.json of a model, refused with a message when it is missing, broken or no model's."""
    from transformers import CONFIG_MAPPING

    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("base_model", f"{config_file} is missing (was the base model deleted?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("base_model", f"{config_file} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ConfigError("base_model", f"{config_file} does not describe a model (it has no model_type)")
    if config["model_type"] not in CONFIG_MAPPING:
        raise ConfigError("base_model", f"{config_file}: unknown model_type {config['model_type']!r}")
    return config
