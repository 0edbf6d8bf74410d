"""Where model files live, and reading their JSON config without importing torch.

The indexing orchestrator only needs a model's id and path; keeping torch out of that process
saves ~250 MB of memory, since the worker processes do the embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"


def config_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def resolve_model_path(path: str | Path | None) -> Path:
    """A model given as a file, a file without its suffix, or a directory holding model.safetensors."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists() and path.with_name(path.name + ".safetensors").exists():
        path = path.with_name(path.name + ".safetensors")
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if not config_path(path).exists():
        raise ModelError(f"{config_path(path)}: model config missing (expected beside the weights)")
    return path


def read_config(path: str | Path | None) -> dict:
    where = config_path(resolve_model_path(path))
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{where}: not a model config (not valid JSON: {e})") from None
    missing = [k for k in ("model_id", "features", "encoder") if not isinstance(config, dict) or k not in config]
    if missing:
        raise ModelError(f"{where}: not a model config (no {', '.join(missing)})")
    return config
