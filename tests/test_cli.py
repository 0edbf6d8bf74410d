"""The command line: one smoke test in a real subprocess, the rest in-process (CliRunner)."""

import json
import shutil
from pathlib import Path

import numpy as np

from songspace.models.files import DEFAULT_MODEL, config_path


def test_help_teaches_the_commands(songspace):
    text = songspace("--help", check=True).stdout
    for command in ("index", "similar", "status", "export", "train"):
        assert command in text
    assert "--fit" in songspace("index", "--help", check=True).stdout
    assert "artist - title" in songspace("similar", "--help", check=True).stdout


def test_index_similar_status_export(music, cli, library_dir, tmp_path):
    proc = cli("index", str(music), check=True)
    assert "added 12" in proc.stderr and "failed 0" in proc.stderr
    assert (library_dir / "catalog.sqlite").exists()

    rows = json.loads(cli("similar", "1", "-k", "4", "--json", check=True).stdout)
    assert len(rows) == 4 and all(r["id"] != 1 for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    table = cli("similar", "1", "-k", "3", check=True).stdout
    assert "Sounds like" in table and rows[0]["path"].split("/")[-1][:10] in table

    status = json.loads(cli("status", "--json", check=True).stdout)
    assert status["ok"] == 12 and status["failed"] == 0 and status["searchable"] == 12
    assert status["model"]["id"] in status["embeddings_by_model"]

    cli("export", str(tmp_path / "v.npz"), check=True)
    assert np.load(tmp_path / "v.npz")["vectors"].shape[0] == 12


def test_bad_queries_and_paths_fail_clearly(music, songspace, tmp_path):
    songspace("index", str(music), "--workers", "0", check=True)
    proc = songspace("similar", "nothing like this exists")
    assert proc.exit_code == 2 and "no track matches" in proc.stderr
    fake = tmp_path / "fake.mp3"
    fake.write_text("not audio")
    proc = songspace("similar", str(fake))
    assert proc.exit_code == 2 and str(fake) in proc.stderr and "not a recognised audio format" in proc.stderr
    proc = songspace("index", str(tmp_path / "missing-folder"))
    assert proc.exit_code == 2 and "no such folder" in proc.stderr
    proc = songspace("export", str(tmp_path / "v.csv"))
    assert proc.exit_code == 2 and ".npz or .parquet" in proc.stderr


def test_library_option_overrides_environment(music, cli, tmp_path):
    other = tmp_path / "elsewhere"
    cli("--library", str(other), "index", str(music), "--workers", "1", check=True)
    assert (other / "catalog.sqlite").exists()
    status = json.loads(cli("status", "--json", check=True).stdout)  # the env library stays empty
    assert status["tracks"] == 0


def test_demo_library_command(songspace, tmp_path):
    songspace("demo-library", str(tmp_path / "demo"), "--per-style", "1", check=True)
    assert len([p for p in Path(tmp_path / "demo").rglob("*") if p.is_file()]) == 4


def test_train_and_use_refuse_bad_input_clearly(songspace, tmp_path):
    proc = songspace("train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m"))
    assert proc.exit_code == 2 and "no such folder" in proc.stderr
    proc = songspace("train", str(tmp_path), "--out", str(tmp_path))
    assert proc.exit_code == 2 and "is a folder; give a model file" in proc.stderr
    proc = songspace("train", str(tmp_path), "--objective", "magic", "--out", str(tmp_path / "m"))
    assert proc.exit_code == 2 and "objective" in proc.stderr
    proc = songspace("use", str(tmp_path / "missing.safetensors"))
    assert proc.exit_code == 2 and "model file not found" in proc.stderr
    # A model whose config this encoder cannot build (here: an unknown field) is refused up front.
    config = json.loads(config_path(DEFAULT_MODEL).read_text())
    config["encoder"]["hidden_dim"] = 256
    (tmp_path / "odd.json").write_text(json.dumps(config))
    shutil.copy(DEFAULT_MODEL, tmp_path / "odd.safetensors")
    proc = songspace("use", str(tmp_path / "odd.safetensors"))
    assert proc.exit_code == 2 and "odd.safetensors: not a model this songspace can load" in proc.stderr
    # Weights that do not fit their config, weights that are not weights, a config that is not one.
    config["encoder"] = {**json.loads(config_path(DEFAULT_MODEL).read_text())["encoder"], "channels": [16, 32]}
    (tmp_path / "odd.json").write_text(json.dumps(config))
    proc = songspace("use", str(tmp_path / "odd.safetensors"))
    assert proc.exit_code == 2 and "not a model this songspace can load (RuntimeError" in proc.stderr
    (tmp_path / "odd.safetensors").write_bytes(b"\x00" * 1000)
    proc = songspace("use", str(tmp_path / "odd.safetensors"))
    assert proc.exit_code == 2 and "can load (SafetensorError" in proc.stderr
    for text, reason in (("{bad", "not valid JSON"), ('{"model_id": "x"}', "no features, encoder")):
        (tmp_path / "odd.json").write_text(text)
        proc = songspace("use", str(tmp_path / "odd.safetensors"))
        assert proc.exit_code == 2 and "odd.json: not a model config" in proc.stderr and reason in proc.stderr
    proc = songspace("train", str(tmp_path), "--out", str(tmp_path / "m"), "--seed", "-1")
    assert proc.exit_code == 2 and "--seed" in proc.stderr


def test_help_imports_nothing_heavy():
    """`songspace --help` (and so every command's start-up) stays free of Ray, torch and pyarrow."""
    import subprocess
    import sys

    code = ("import sys\nfrom songspace.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('ray', 'torch', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_without_ray_the_flag_says_how_to_install_it(music, tmp_path, songspace, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as where it is not installed
    for command in (("index", str(music), "--ray"), ("embed", str(music), "--out", str(tmp_path / "ds"), "--ray")):
        result = songspace(*command)
        assert result.exit_code == 2, result.output
        assert "pip install 'songspace[ray]'" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_ray_only_options_and_rows_per_file_are_checked(music, tmp_path, songspace, library_dir):
    for option, args in (("--always-ship", ["--always-ship"]), ("--ship-below", ["--ship-below", "10"])):
        result = songspace("index", str(music), *args)
        assert result.exit_code == 2 and f"{option} works only with --ray" in result.output, result.output
    assert not library_dir.exists()  # refused before the library was made
    for rows in ("0", "-5"):
        result = songspace("embed", str(music), "--out", str(tmp_path / "ds"), "--rows-per-file", rows)
        assert result.exit_code == 2 and "--rows-per-file" in result.output, result.output
    assert not (tmp_path / "ds").exists()


def test_ray_takes_an_address_only_when_it_looks_like_one(tmp_path):
    """`--ray` alone means a local cluster; what follows it is its address only if it looks like
    one (auto, local, HOST:PORT, ray://...), never a folder here or a bucket to embed."""
    from typer.main import get_command

    from songspace.cli import app

    commands = get_command(app).commands
    cases = {("index", "--ray", str(tmp_path)): ("local", [tmp_path]),
             ("index", str(tmp_path), "--ray", "--workers", "3"): ("local", [tmp_path]),
             ("index", "--ray", "auto", str(tmp_path)): ("auto", [tmp_path]),
             ("index", str(tmp_path), "--ray", "10.0.0.2:6379"): ("10.0.0.2:6379", [tmp_path]),
             ("index", "--ray=ray://head:10001", str(tmp_path)): ("ray://head:10001", [tmp_path]),
             ("embed", "--ray", "s3://bucket/music/", "--out", "ds"): ("local", ["s3://bucket/music/"])}
    for (name, *args), (address, positional) in cases.items():
        params = commands[name].make_context(name, list(args)).params
        assert params["ray"] == address, args
        assert params.get("folders", params.get("sources")) == positional, args


def test_a_library_path_that_cannot_be_a_library_is_refused(tmp_path, songspace):
    from typer.testing import CliRunner

    from songspace.cli import app

    (tmp_path / "file").touch()
    for library, reason in ((tmp_path / "file", "is a file, not a library folder"),
                            (tmp_path / "file" / "lib", "cannot make the library folder"),
                            ("", "give a folder, not an empty string")):
        result = CliRunner().invoke(app, ["--library", str(library), "status"], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and reason in result.output, result.output
    result = songspace("export", str(tmp_path / "nowhere" / "x.npz"))
    assert result.exit_code == 2 and "nowhere: no such folder to export to" in result.stderr


def test_options_that_would_be_ignored_are_refused(songspace, tmp_path):
    result = songspace("export", str(tmp_path / "x.npz"), "--rows-per-file", "5")
    assert result.exit_code == 2 and "--rows-per-file splits a --parquet-dataset" in result.stderr
    for command in (("radio", "1"), ("path", "1", "2")):
        result = songspace(*command, "--mpd-music-dir", str(tmp_path))
        assert result.exit_code == 2 and "--mpd-music-dir is for MPD" in result.stderr


def test_modules_below_the_cli_name_parameters_not_flags():
    """Errors from the library, MPD, the GPU path... name the parameter ("device"); only the CLI
    knows its flags (it adds "(--device)"). Docstrings and comments may mention commands."""
    import ast
    import re

    import songspace

    root = Path(songspace.__file__).parent
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if flag.search(node.value):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)
