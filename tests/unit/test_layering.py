"""The engine's layering: logic depends on ports and models, never on dal; dal never needs logic.

`logic` is the pure decision side (tested in memory against tests/fakes); `dal` implements its
ports over HTTP and DynamoDB; both share `models` and `errors`. A runtime import of `dal` from
`logic` would tie the engine to boto3 and requests again; one of `logic` from `dal` would make
a cycle. A type-only import (under TYPE_CHECKING, for mypy to prove a client fits its port) is
allowed.

The reconciler (with its catch-up) and the receiver depend on the ports of `logic.ports` too:
which DynamoDB, HTTP or SQS class plays each port is `tasksync.wiring`'s business alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "tasksync" / "tasksync"
FORBIDDEN = {"logic": ("tasksync.dal",), "models": ("tasksync.dal", "tasksync.logic"), "dal": ("tasksync.logic",)}
ON_PORTS = ("catch_up.py", "reconciler.py", "receiver.py")


def runtime_imports(path: Path) -> list[str]:
    """Modules imported outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for child in ast.walk(node))
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_must_not(layer: str) -> None:
    offending = [
        f"{path.name}: {module}"
        for path in sorted((PACKAGE / layer).glob("*.py"))
        for module in runtime_imports(path)
        if module.startswith(FORBIDDEN[layer])
    ]
    assert offending == []


@pytest.mark.parametrize("module", ON_PORTS)
def test_the_reconciler_and_the_receiver_know_no_concrete_store_or_client(module: str) -> None:
    assert [name for name in runtime_imports(PACKAGE / module) if name.startswith("tasksync.dal")] == []
