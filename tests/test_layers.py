"""The module graph of src/rmq_native points one way (issue 13).

Read from the sources' syntax trees (every import, also those inside
functions; imports under ``if TYPE_CHECKING:`` are annotations only and
left out): no import cycles, and the lower layers (_ffi, _wire, errors,
message) import nothing from higher ones. Each module also imports on its
own in a fresh interpreter. aio.py reaches into the synchronous classes
only through their named seam (``_AIO_SEAM``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rmq_native
from rmq_native import consumer, producer, reader

PKG = Path(rmq_native.__file__).parent
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__main__")
# a lower layer may import only these (and the standard library)
LOWER = {
    "_version": set(),
    "errors": set(),
    "_ffi": {"errors", "_version"},
    "message": {"errors"},
    "_wire": {"message", "errors"},
}
MAX_LINES = 600


def _imports(module: str) -> set[str]:
    """The rmq_native modules module imports (its own package's, by name)."""
    tree = ast.parse((PKG / f"{module}.py").read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        # only the body of `if TYPE_CHECKING:` (an `if not TYPE_CHECKING:` body runs)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("rmq_native."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rmq_native."))
    return {m for m in found if m in MODULES and m != module}


def test_no_import_cycles() -> None:
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", sorted(LOWER))
def test_lower_layers_import_nothing_higher(module: str) -> None:
    assert _imports(module) <= LOWER[module]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import rmq_native.{module}"], check=True, cwd=PKG.parent.parent)


@pytest.mark.parametrize("module", MODULES)
def test_module_size(module: str) -> None:
    lines = len((PKG / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}.py has {lines} lines"


def test_aio_uses_the_named_seam_only() -> None:
    classes = {"Producer": producer.Producer, "Consumer": consumer.Consumer, "Reader": reader.Reader}
    tree = ast.parse((PKG / "aio.py").read_text(encoding="utf-8"))
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef) or cls.name not in classes:
            continue
        used = {
            node.attr
            for node in ast.walk(cls)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            and ast.unparse(node.value) == "self._sync"
        }
        assert used <= set(classes[cls.name]._AIO_SEAM), f"aio.{cls.name} uses {used}"
        for name in classes[cls.name]._AIO_SEAM:
            assert callable(getattr(classes[cls.name], name))


def test_public_import_paths_still_work() -> None:
    from rmq_native.producer import Producer, TransactionProducer

    assert Producer is rmq_native.Producer and TransactionProducer is rmq_native.TransactionProducer
