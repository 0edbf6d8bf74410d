"""Model files: a plain safetensors state dict of the encoder, with its config in JSON beside it.

`model.safetensors` holds the weights; `model.json` holds the feature and encoder configs and
how the model was trained. The model id is derived from the weights, so two libraries that
embedded with the same weights agree on the id, and any change of weights changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..features import FeatureConfig
from .encoder import Encoder, EncoderConfig
from .files import config_path, read_config, resolve_model_path


@dataclass
class Model:
    encoder: Encoder
    features: FeatureConfig
    model_id: str
    path: Path | None = None
    info: dict = field(default_factory=dict)


def weights_id(state: dict[str, torch.Tensor], name: str) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return f"{name}-{digest.hexdigest()[:12]}"


def save_model(path: str | Path, encoder: Encoder, features: FeatureConfig, info: dict | None = None) -> Model:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    model_id = weights_id(state, path.stem)
    save_file(state, str(path))
    config = {
        "model_id": model_id,
        "features": features.to_dict(),
        "encoder": encoder.cfg.to_dict(),
        "info": info or {},
    }
    config_path(path).write_text(json.dumps(config, indent=2) + "\n")
    return Model(encoder, features, model_id, path, info or {})


def load_model(path: str | Path | None = None) -> Model:
    """Load a model file (default: the one shipped in the package); eval mode, on the CPU."""
    path = resolve_model_path(path)
    config = read_config(path)
    encoder = Encoder(EncoderConfig.from_dict(config["encoder"]))
    encoder.load_state_dict(load_file(str(path)))
    encoder.eval()
    return Model(encoder, FeatureConfig(**config["features"]), config["model_id"], path, config.get("info", {}))
