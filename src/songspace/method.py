"""The embedding method: what turns a file into a vector. The one place that knows the methods.

A method is named as the user types it: "default" (the shipped model), "mfcc" (hand-crafted MFCC
statistics, the baseline), or a model file. `resolve` turns that name into a `Method`: its
canonical name (what the catalog stores and workers are sent: "mfcc" or the model file's path),
the id its vectors carry, its file, whether it stores segment vectors, whether its vectors are
standardised over the collection, and how to make its embedder. Nothing else in songspace
compares method names: a new kind of method is added here.

Importing this module imports neither torch nor librosa; making an embedder does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .baselines import MFCC_METHOD
from .models.files import DEFAULT_MODEL, read_config, resolve_model_path

if TYPE_CHECKING:
    from .catalog import Catalog

DEFAULT = "default"  # the shipped model
MFCC = "mfcc"  # the hand-crafted baseline as a library's method; its vectors' id is MFCC_METHOD
RANDOM = "random"  # the untrained encoder: a baseline `evaluate` scores, never a library's method
BASELINES = (MFCC, RANDOM)


@dataclass(frozen=True)
class Method:
    name: str  # canonical: "mfcc", "random" or a model file's resolved path
    id: str  # the id the vectors it makes carry
    file: Path | None  # the model file (None: a method without one)
    kind: str  # "model", "mfcc" or "random"

    @property
    def has_segments(self) -> bool:
        """Whether it makes segment vectors (one per few-second patch): only encoders do."""
        return self.kind != "mfcc"

    @property
    def standardised(self) -> bool:
        """Whether its vectors compare only after standardising over the whole collection (mixed
        units: Hz, dB, BPM), so any change to the collection moves every vector."""
        return self.kind == "mfcc"

    @property
    def fit_start(self) -> Path:
        """The model file a fit starts from: its own, or the shipped model for a method without one."""
        return self.file if self.file is not None else DEFAULT_MODEL

    def embedder(self):
        """Its embedder (`embedding.Embedder`'s face: `embed_file`, `model_id`), one per method per
        process: loading weights per file would dominate."""
        if self.name not in _embedders:
            _embedders[self.name] = self.new_embedder()
        return _embedders[self.name]

    def new_embedder(self):
        """A new embedder, not shared: for an owner that keeps its own (the Searcher, query.py)."""
        if self.kind == "mfcc":
            from .baselines import MfccEmbedder

            return MfccEmbedder()
        if self.kind == "random":
            from .baselines import random_embedder

            return random_embedder()
        import torch

        from .embedding import Embedder  # torch is imported where something is embedded only

        # Always the CPU: a GPU is driven from one process (gpu.py), never from every worker,
        # and `index --device cpu` on a GPU machine means the CPU.
        return Embedder(str(self.file), device=torch.device("cpu"))


_embedders: dict[str, object] = {}


def resolve(name: str | Path | None) -> Method:
    """The method a user's name means: None or "default" the shipped model, "mfcc" the
    baseline, anything else a model file (a file, a file without its suffix, or a folder holding
    model.safetensors). Raises ModelError for a model file that is missing or has no config."""
    text = DEFAULT if name is None else str(name)
    if text == MFCC:
        return Method(MFCC, MFCC_METHOD, None, "mfcc")
    path = resolve_model_path(DEFAULT_MODEL if text == DEFAULT else text)
    return Method(str(path), read_config(path)["model_id"], path, "model")


def baseline(name: str) -> Method:
    """One of the BASELINES `evaluate` scores beside the library's model."""
    if name == RANDOM:
        return Method(RANDOM, "random-init-0", None, "random")
    if name == MFCC:
        return resolve(MFCC)
    raise ValueError(f"no baseline {name!r} (baselines: {', '.join(BASELINES)})")


def embedder(name: str | Path):
    """The embedder of the method named `name` (canonical or as typed), cached per process."""
    name = str(name)
    return _embedders[name] if name in _embedders else resolve(name).embedder()


# -- which method a library uses, kept in its catalog's meta --------------------------------------


def current(catalog: "Catalog") -> Method:
    """The method the library indexes with (the shipped model until told otherwise)."""
    return resolve(catalog.get_meta("model"))


def use(catalog: "Catalog", method: Method) -> None:
    """Make `method` the library's method (and remember which file made its vectors)."""
    remember(catalog, method)
    catalog.set_meta("model", method.name)


def remember(catalog: "Catalog", method: Method) -> None:
    """Note which method makes vectors with `method.id`, so that queries can be embedded by it
    while search still answers from those vectors after a switch."""
    catalog.set_meta(f"method:{method.id}", method.name)


def of_vectors(catalog: "Catalog", model_id: str, fallback: Method) -> Method:
    """The method that made the vectors with id `model_id`: the one remembered, else `fallback`."""
    if model_id == MFCC_METHOD:
        return resolve(MFCC)
    name = catalog.get_meta(f"method:{model_id}")
    if not name:
        return fallback
    # Not resolved again: a file since removed fails when something is embedded with it, naming
    # the file, while search over its stored vectors goes on.
    return Method(name, model_id, Path(name), "model")
