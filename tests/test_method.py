"""The embedding method: the names users type, resolved in one place."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from songspace import method as methods
from songspace.catalog import Catalog
from songspace.errors import ModelError
from songspace.models.files import DEFAULT_MODEL, config_path, read_config


def test_names_resolve_to_methods(tmp_path):
    default = methods.resolve("default")
    assert methods.resolve(None) == default
    assert default.file == DEFAULT_MODEL and default.name == str(DEFAULT_MODEL)
    assert default.id == read_config(DEFAULT_MODEL)["model_id"]
    assert default.has_segments and not default.standardised
    mfcc = methods.resolve("mfcc")
    assert mfcc.file is None and not mfcc.has_segments and mfcc.standardised and mfcc.id != default.id
    assert mfcc.fit_start == DEFAULT_MODEL and default.fit_start == DEFAULT_MODEL
    # a model file given without its suffix, or as its folder, is the same method
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(DEFAULT_MODEL, folder / "model.safetensors")
    shutil.copy(config_path(DEFAULT_MODEL), folder / "model.json")
    assert methods.resolve(folder) == methods.resolve(folder / "model") == methods.resolve(folder / "model.safetensors")
    with pytest.raises(ModelError, match="nothing-here"):
        methods.resolve(tmp_path / "nothing-here.safetensors")
    assert methods.baseline("random").has_segments and methods.baseline("mfcc") == mfcc
    with pytest.raises(ValueError, match="nope"):
        methods.baseline("nope")


def test_the_catalog_remembers_the_method_and_who_made_which_vectors(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    assert methods.current(cat) == methods.resolve("default")  # until told otherwise
    methods.use(cat, methods.resolve("mfcc"))
    assert methods.current(cat) == methods.resolve("mfcc")
    default = methods.resolve("default")
    methods.remember(cat, default)
    assert methods.of_vectors(cat, default.id, methods.current(cat)) == default
    assert methods.of_vectors(cat, "never-seen", default) == default  # unknown: the fallback
    cat.close()


def test_importing_it_imports_no_torch():
    code = "import sys, songspace.method; print('torch' in sys.modules, 'librosa' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_embedder_is_made_once_per_method():
    mfcc = methods.resolve("mfcc")
    assert mfcc.embedder() is methods.embedder("mfcc") and mfcc.embedder().model_id == mfcc.id
