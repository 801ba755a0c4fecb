"""tests.support.check_build tells a usable `sam build` output from one that is not."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest

from tests.support.check_build import EXTENSION_SUFFIX, FUNCTIONS, LAYER, LAYER_PACKAGES, check_build, main


def _module(path: Path, mode: py_compile.PycInvalidationMode = py_compile.PycInvalidationMode.UNCHECKED_HASH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("VALUE = 1\n", encoding="utf-8")
    py_compile.compile(str(path), invalidation_mode=mode, doraise=True)


def make_build(root: Path) -> Path:
    build = root / "build"
    build.mkdir()
    (build / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    site = build / LAYER / "python"
    for package in LAYER_PACKAGES:
        _module(site / package / "__init__.py")
    (site / "pydantic_core" / f"_pydantic_core{EXTENSION_SUFFIX}").write_bytes(b"\x7fELF")
    for function in FUNCTIONS:
        _module(build / function / "app.py")
    return build


def test_a_complete_build_passes(tmp_path: Path) -> None:
    assert check_build(make_build(tmp_path)) == []
    assert main([str(tmp_path / "build")]) == 0


def test_a_module_without_pyc_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    (build / LAYER / "python" / "tasksync" / "receiver.py").write_text("X = 1\n", encoding="utf-8")
    problems = check_build(build)
    assert problems == ["tasksync/receiver.py: no receiver.cpython-312.pyc"]
    assert main([str(build)]) == 1


def test_a_timestamp_pyc_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    _module(build / "WorkerFunction" / "app.py", py_compile.PycInvalidationMode.TIMESTAMP)
    assert [p for p in check_build(build) if "WorkerFunction/app.py" in p and "unchecked-hash" in p]


def test_an_x86_extension_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    site = build / LAYER / "python" / "pydantic_core"
    (site / f"_pydantic_core{EXTENSION_SUFFIX}").rename(site / "_pydantic_core.cpython-312-x86_64-linux-gnu.so")
    problems = check_build(build)
    assert any("no .cpython-312-aarch64-linux-gnu.so" in p for p in problems)
    assert any("not built for arm64" in p for p in problems)


def test_a_missing_function_or_package_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    (build / "ReconcilerFunction" / "app.py").unlink()
    for path in (build / LAYER / "python" / "requests").rglob("*"):
        if path.is_file():
            path.unlink()
    problems = check_build(build)
    assert "ReconcilerFunction: no app.py" in problems
    assert any("package requests is missing" in p for p in problems)


@pytest.mark.parametrize("path", ["tasksync/sandbox/close.py", "tasksync/local/stack.py", "tasksync/cli/__init__.py"])
def test_dev_tools_in_the_layer_fail(tmp_path: Path, path: str) -> None:
    build = make_build(tmp_path)
    _module(build / LAYER / "python" / path)
    problems = check_build(build)
    assert f"{LAYER}: {path.rsplit('/', 1)[0]} must not ship (dev tools)" in problems
    assert main([str(build)]) == 1


def test_the_dev_tools_package_in_the_layer_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    _module(build / LAYER / "python" / "tasksync_dev" / "__init__.py")
    assert f"{LAYER}: tasksync_dev must not ship (dev tools)" in check_build(build)


def test_a_runtime_module_importing_dev_tools_fails(tmp_path: Path) -> None:
    build = make_build(tmp_path)
    module = build / LAYER / "python" / "tasksync" / "wiring.py"
    module.write_text("from tasksync_dev.sandbox.close import CloseSimulator\n", encoding="utf-8")
    py_compile.compile(str(module), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, doraise=True)
    assert check_build(build) == [f"{LAYER}: tasksync/wiring.py refers to tasksync_dev, which does not ship"]


def test_no_build_at_all_fails(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 1
