"""The imports point the way docs/ARCHITECTURE.md draws them (issue 13: layers that point one way).

Read from the source with `ast` (no import runs): every `tickwatch.*` import of every module,
lazy ones inside functions included, is checked against what its layer may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tickwatch"

# the definitions every layer reads: they import only each other
DEFINITIONS = {"model", "errors", "clock", "records", "markets", "decoding", "normalize", "nab"}
# what each layer may import besides itself (the top-level name under tickwatch)
ALLOWED = {
    **{name: DEFINITIONS for name in DEFINITIONS},
    "engine": {"model", "errors", "clock", "records", "markets"},
    "sources": DEFINITIONS | {"config", "engine"},  # engine: its input batch (TickBatch)
    "bus": DEFINITIONS | {"config"},
    "store": DEFINITIONS | {"config", "engine"},  # engine: the window and alert rows it stores
}


def _layer(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    """The top-level tickwatch names `path` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        names.update(m.split(".")[1] for m in modules if m.startswith("tickwatch."))
    return names


def test_the_layers_are_found() -> None:
    layers = {_layer(p) for p in SRC.rglob("*.py")}
    assert set(ALLOWED) <= layers  # a renamed layer must not make this test vacuous


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_from_its_left(layer: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)} imports tickwatch.{name}"
        for path in SRC.rglob("*.py")
        if _layer(path) == layer
        for name in _imports(path) - ALLOWED[layer] - {layer}
    }
    assert not wrong, sorted(wrong)


def test_nothing_imports_the_cli() -> None:
    wrong = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if _layer(path) != "cli" and "cli" in _imports(path)
    ]
    assert not wrong


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text(
        "def f():\n    from tickwatch.store.sql import SqlStore\n    import tickwatch.web\n"
    )
    assert _imports(module) == {"store", "web"}
