"""`make` checks Python 3.12, Java 17 and npm before it installs anything, and finds Python 3.12
on PATH first (python.mk, shared by the root, layer and function Makefiles).

Each case runs the real Makefile with a PATH holding only the tools the case gives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasksync_dev.local.template import REPO_ROOT

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _tool_dir(tmp_path: Path, *, java_version: str | None = None, npm: bool = False) -> Path:
    """A PATH directory with the shell tools the recipes use, plus a fake java/npm when asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "head"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    if java_version is not None:
        java = bin_dir / "java"
        java.write_text(f"#!/bin/sh\necho 'openjdk version \"{java_version}\" 2025-04-15' >&2\n", encoding="utf-8")
        java.chmod(0o755)
    if npm:
        fake_npm = bin_dir / "npm"
        fake_npm.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        fake_npm.chmod(0o755)
    return bin_dir


def _make(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": str(bin_dir), "HOME": str(bin_dir), "PYENV_ROOT": str(bin_dir / "no-pyenv")}
    return subprocess.run(
        [str(MAKE), "--no-print-directory", "-C", str(REPO_ROOT), *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_every_missing_prerequisite_is_named_once_before_anything_is_installed(tmp_path: Path) -> None:
    bin_dir = _tool_dir(tmp_path)
    venv = tmp_path / "venv"
    result = _make(bin_dir, "setup", "PYTHON=", f"VENV={venv}", f"DYNAMODB_LOCAL={tmp_path / 'no.jar'}")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(lines) == 3, result.stderr
    python_line, java_line, npm_line = lines
    assert python_line.startswith("Python 3.12 not found: install Python 3.12 (")
    assert java_line.startswith("Java 17 not found (DynamoDB Local runs on it): install Java 17")
    assert npm_line.startswith("npm not found (DynamoDB Local is downloaded as an npm package): install Node.js")
    assert not venv.exists()
    assert "venv" not in result.stdout


def test_an_old_java_is_refused(tmp_path: Path) -> None:
    bin_dir = _tool_dir(tmp_path, java_version="11.0.2", npm=True)
    result = _make(bin_dir, "prerequisites", f"PYTHON={sys.executable}", "NEEDS=python java npm")
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if not line.startswith("make")] == [
        "Java 17 not found (DynamoDB Local runs on it): install Java 17 or newer "
        "(brew install openjdk@17, or apt-get install openjdk-17-jre-headless)"
    ]


def test_npm_is_not_needed_once_dynamodb_local_is_installed(tmp_path: Path) -> None:
    bin_dir = _tool_dir(tmp_path, java_version="17.0.15")
    jar = tmp_path / "DynamoDBLocal.jar"
    jar.touch()
    result = _make(
        bin_dir, "prerequisites", f"PYTHON={sys.executable}", "NEEDS=python java npm", f"DYNAMODB_LOCAL={jar}"
    )
    assert result.returncode == 0, result.stderr


def test_goals_that_need_only_python_do_not_ask_for_java(tmp_path: Path) -> None:
    result = _make(_tool_dir(tmp_path), "prerequisites", f"PYTHON={sys.executable}")
    assert result.returncode == 0, result.stderr


def _found_python(path: str) -> str:
    result = subprocess.run(
        [str(MAKE), "-s", "-f", str(REPO_ROOT / "python.mk"), "--eval", "print: ; @echo $(FOUND_PYTHON)", "print"],
        env={"PATH": path, "HOME": "/nonexistent", "PYENV_ROOT": "/nonexistent"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_python_312_on_path_comes_first(tmp_path: Path) -> None:
    (tmp_path / "python3.12").symlink_to(sys.executable)
    assert _found_python(f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin") == str(tmp_path / "python3.12")


def test_a_python_on_path_that_does_not_run_312_is_passed_over(tmp_path: Path) -> None:
    # A pyenv shim for a version that is not selected exists on PATH but fails.
    shim = tmp_path / "shims" / "python3.12"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n", encoding="utf-8")
    shim.chmod(0o755)
    real = tmp_path / "real"
    real.mkdir()
    (real / "python3").symlink_to(sys.executable)
    assert _found_python(f"{shim.parent}{os.pathsep}{real}{os.pathsep}/bin") == str(real / "python3")
