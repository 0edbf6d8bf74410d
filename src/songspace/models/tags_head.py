"""The tags head: genre and mood tags predicted from a track vector, shipped inside the model file.

A linear layer on the track vector, one logistic output per tag: p = sigmoid(W v + b). It learnt
the tags of a teacher (musicnn's Million Song Dataset tagger, run once over the training corpus:
`scripts/teacher-tags.py`, `scripts/train-tags-head.py`), so every track gets tags without any
label from the user. Its weights live in the model's safetensors under `tags.` (beside the
encoder's, not part of the model id: the head does not change the vectors), its vocabulary in the
model's JSON under "tags". A model file without them (a fitted or trained model, whose vectors the
head was not trained on) still loads; `load_head` then says None.

Numpy only, no torch: predictions are a matrix product over stored vectors, cheap enough to run
at the end of every `index` and in a process that never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .files import read_config, resolve_model_path

PREFIX = "tags."


@dataclass(frozen=True)
class TagsHead:
    names: tuple[str, ...]  # the tags, e.g. "rock", "calm"
    groups: tuple[str, ...]  # each tag's group: "genre" or "mood"
    weight: np.ndarray  # (tags, dim) float32
    bias: np.ndarray  # (tags,) float32
    info: dict  # teacher, training, figures: the model JSON's "tags" entry

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, tags) probabilities of each tag for each track vector (n, dim)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.weight.shape[1]:
            raise ModelError(f"the tags head takes {self.weight.shape[1]}-d track vectors, not shape {vectors.shape}")
        logits = vectors @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))

    def group(self, name: str) -> list[int]:
        """Indices of the tags of group `name`, in vocabulary order."""
        return [i for i, g in enumerate(self.groups) if g == name]

    def group_names(self) -> list[str]:
        return list(dict.fromkeys(self.groups))


def head_config(head: TagsHead) -> dict:
    """The model JSON's "tags" entry for `head`."""
    return {**head.info, "names": list(head.names), "groups": list(head.groups)}


def head_state(head: TagsHead) -> dict[str, np.ndarray]:
    """The safetensors entries for `head` (numpy arrays)."""
    return {PREFIX + "weight": np.ascontiguousarray(head.weight, np.float32),
            PREFIX + "bias": np.ascontiguousarray(head.bias, np.float32)}


def load_head(path: str | Path | None = None) -> TagsHead | None:
    """The tags head of a model file (default: the shipped one), or None when it has none."""
    from safetensors import SafetensorError, safe_open

    path = resolve_model_path(path)
    entry = read_config(path).get("tags")
    if not entry:
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            if PREFIX + "weight" not in f.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                return None
            weight, bias = f.get_tensor(PREFIX + "weight"), f.get_tensor(PREFIX + "bias")
        names, groups = tuple(entry["names"]), tuple(entry["groups"])
    except (SafetensorError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: its tags head cannot be read ({type(e).__name__}: {e})") from e
    if not (len(names) == len(groups) == weight.shape[0] == bias.shape[0]):
        raise ModelError(f"{path}: its tags head has {weight.shape[0]} outputs for {len(names)} tags")
    info = {k: v for k, v in entry.items() if k not in ("names", "groups")}
    return TagsHead(names, groups, weight.astype(np.float32), bias.astype(np.float32), info)


def add_head(path: str | Path, head: TagsHead) -> None:
    """Write `head` into a model file (its safetensors and JSON), replacing any head it had.
    The encoder's weights and the model id stay as they are."""
    import json

    from safetensors.numpy import load_file, save_file

    from .files import config_path

    path = resolve_model_path(path)
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith(PREFIX)}
    save_file({**state, **head_state(head)}, str(path))
    config = read_config(path)
    config["tags"] = head_config(head)
    config_path(path).write_text(json.dumps(config, indent=2) + "\n")
