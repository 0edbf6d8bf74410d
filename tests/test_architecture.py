"""The house rules of docs/architecture.md, checked: every module sits on a floor, imports only from
its own floor or lower ones, no import cycles, and no module over ~500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 520  # "about 500"

# Floors, lowest first, as docs/architecture.md draws them. A module is placed by its longest
# matching prefix; a new module must be placed here (and in the doc) before the test passes.
FLOORS = [
    ("ground", ["errors", "resample", "audio", "features", "models", "tags", "scan", "synth", "variants",
                "workers", "augment", "hubness", "timbre", "fusion", "recommend.align", "status", "progress", "remote", "map_layout",
                "teacher"]),
    ("storage", ["catalog", "segment_store", "vectors"]),
    ("making vectors", ["embedding", "baselines", "method", "analysis", "training", "fit_check", "evaluate",
                        "crossval", "distributed", "dataset", "gpu", "autotags", "proximity"]),
    ("asking", ["query", "snapshot", "segment_index", "rerank", "recommend", "shapes", "playlists", "map", "mpd",
                "to_playlist"]),
    ("library", ["library", "indexing", "check"]),
    ("faces", ["cli", "server", "__main__", ""]),  # "": the package itself (its __init__ re-exports Library)
]


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "songspace").rglob("*.py"):
        parts = path.relative_to(SRC / "songspace").with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def floor_of(module: str) -> int | None:
    best = None
    for level, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or (prefix and module.startswith(prefix + ".")) or (prefix == "" and module == ""):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), level)
    return None if best is None else best[1]


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The songspace modules this one imports at run time (not those under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("songspace"):
                target = node.module.removeprefix("songspace").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("songspace"):
                    found.add(alias.name.removeprefix("songspace").lstrip("."))
    return {m for m in found if m in known and m != module}


def test_every_module_is_on_a_floor_and_imports_only_downwards():
    known = modules()
    unplaced = sorted(m for m in known if floor_of(m) is None)
    assert not unplaced, f"place these on a floor (here and in docs/architecture.md): {unplaced}"
    upward = []
    for module, path in known.items():
        for target in imports(module, path, known):
            if floor_of(target) > floor_of(module):
                upward.append(f"{module} ({FLOORS[floor_of(module)][0]}) imports {target} "
                              f"({FLOORS[floor_of(target)][0]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    # A package importing its own submodules is how packages work; a submodule importing its
    # package back while the package imports it is a cycle like any other.
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_no_module_is_over_about_500_lines():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long
