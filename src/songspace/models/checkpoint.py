"""Model files: a plain safetensors state dict of the encoder, with its config in JSON beside it.

`model.safetensors` holds the encoder's weights, and under `objective.` the rest of the
training objective (the contrastive projection head, or the autoencoder's decoder), so that
fitting a model to a library continues with the head it was trained with instead of a random
one whose first gradients would scramble the encoder; the shipped model also holds, under
`tags.`, the tags head (models/tags_head.py), which `load_model` leaves to `load_head`. `model.json` holds the feature and
encoder configs and how the model was trained. The model id is derived from the encoder's
weights and the feature config (together they make the embeddings), so two libraries that embedded with the same
weights agree on the id, and any change of them changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import ModelError
from ..features import FeatureConfig
from .encoder import Encoder, EncoderConfig
from .files import config_path, read_config, resolve_model_path
from .tags_head import PREFIX as TAGS_PREFIX


@dataclass
class Model:
    encoder: Encoder
    features: FeatureConfig
    model_id: str
    path: Path | None = None
    info: dict = field(default_factory=dict)
    objective_state: dict[str, torch.Tensor] = field(default_factory=dict)  # see the module docstring

    @property
    def objective(self) -> str | None:
        """The training objective the model (and its objective_state) came from."""
        return self.info.get("training", {}).get("objective")


def weights_id(state: dict[str, torch.Tensor], name: str, features: FeatureConfig) -> str:
    """Encoder weights and feature config together make the embeddings, so both make the id."""
    digest = hashlib.sha256(json.dumps(features.to_dict(), sort_keys=True).encode())
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return f"{name}-{digest.hexdigest()[:12]}"


OBJECTIVE_PREFIX = "objective."


def save_model(path: str | Path, encoder: Encoder, features: FeatureConfig, info: dict | None = None,
               objective_state: dict[str, torch.Tensor] | None = None) -> Model:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    model_id = weights_id(state, path.stem, features)
    objective_state = {k: v.detach().cpu().contiguous() for k, v in (objective_state or {}).items()}
    save_file({**state, **{OBJECTIVE_PREFIX + k: v for k, v in objective_state.items()}}, str(path))
    config = {
        "model_id": model_id,
        "features": features.to_dict(),
        "encoder": encoder.cfg.to_dict(),
        "info": info or {},
    }
    config_path(path).write_text(json.dumps(config, indent=2) + "\n")
    return Model(encoder, features, model_id, path, info or {}, objective_state)


def load_model(path: str | Path | None = None) -> Model:
    """Load a model file (default: the one shipped in the package); eval mode, on the CPU."""
    path = resolve_model_path(path)
    config = read_config(path)
    # A model from before the embedding moved one layer down (TypeError), weights that are not a
    # safetensors file, or that do not fit the config (RuntimeError): one clear line, not torch's.
    try:
        encoder = Encoder(EncoderConfig.from_dict(config["encoder"]))
        features = FeatureConfig(**config["features"])
        state = load_file(str(path))
        objective_state = {k[len(OBJECTIVE_PREFIX):]: state.pop(k) for k in list(state) if k.startswith(OBJECTIVE_PREFIX)}
        for k in [k for k in state if k.startswith(TAGS_PREFIX)]:  # the tags head: models/tags_head.py reads it
            del state[k]
        encoder.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, SafetensorError) as e:
        reason = (str(e).strip().splitlines() or [""])[0]
        raise ModelError(f"{path}: not a model this songspace can load ({type(e).__name__}: {reason}); "
                         "the shipped model ('default') always loads") from e
    encoder.eval()
    return Model(encoder, features, config["model_id"], path, config.get("info", {}), objective_state)
