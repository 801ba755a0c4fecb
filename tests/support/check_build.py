"""Check what `sam build` produced: `python -m tests.support.check_build .aws-sam/build`.

Lambda's code directories are read-only, so a module without a usable .pyc is compiled again
on every cold start. This asserts that the layer and the functions ship .pyc files that
CPython 3.12 (the runtime) will use as they are: compiled for cpython-312 and hash-based
without a source check ("unchecked-hash", valid whatever timestamps the zip gives the .py),
and that the compiled extensions are the arm64 CPython 3.12 builds the template declares.
It also asserts that no dev tool ships: the simulators, the local runner and the operator CLI
live in devtools/ (package `tasksync_dev`), and nothing in the layer may carry or import them.
Exits non-zero with one line per problem.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

PYC_TAG = "cpython-312"
# PEP 552: flags word after the magic number; bit 0 = hash-based, bit 1 = check_source.
UNCHECKED_HASH_FLAGS = 0b01
# Packages whose import time matters on every cold start; each must be fully compiled.
LAYER_PACKAGES = ("tasksync", "pydantic", "pydantic_core", "aws_lambda_powertools", "requests", "boto3", "botocore")
EXTENSION_SUFFIX = ".cpython-312-aarch64-linux-gnu.so"
FUNCTIONS = ("ReceiverFunction", "WorkerFunction", "ReconcilerFunction")
LAYER = "TaskSyncLayer"
# Where the dev tools used to live inside the runtime package, and the package they live in now.
DEV_TOOL_PATHS = ("tasksync/sandbox", "tasksync/local", "tasksync/cli", "tasksync/__main__.py", "tasksync_dev")
DEV_TOOL_PACKAGE = "tasksync_dev"


def _pyc_for(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"


def _pyc_flags(pyc: Path) -> int:
    with pyc.open("rb") as handle:
        header = handle.read(8)
    return int.from_bytes(header[4:8], "little")


def check_sources(sources: Iterable[Path], root: Path) -> list[str]:
    """Each source has a cpython-312 unchecked-hash .pyc next to it."""
    problems: list[str] = []
    for source in sources:
        pyc = _pyc_for(source)
        where = source.relative_to(root)
        if not pyc.is_file():
            problems.append(f"{where}: no {pyc.name}")
        elif _pyc_flags(pyc) != UNCHECKED_HASH_FLAGS:
            problems.append(f"{where}: {pyc.name} is not an unchecked-hash pyc (flags {_pyc_flags(pyc):#x})")
    return problems


def check_layer(build_dir: Path) -> list[str]:
    site = build_dir / LAYER / "python"
    if not site.is_dir():
        return [f"{site}: missing (the layer must put its packages under python/)"]
    problems: list[str] = []
    for package in LAYER_PACKAGES:
        package_dir = site / package
        sources = sorted(package_dir.rglob("*.py"))
        if not sources:
            problems.append(f"{LAYER}: package {package} is missing or has no modules")
            continue
        problems += check_sources(sources, site)
    if not list((site / "pydantic_core").glob(f"*{EXTENSION_SUFFIX}")):
        problems.append(f"{LAYER}: pydantic_core has no {EXTENSION_SUFFIX} extension (wrong platform?)")
    foreign = [p for p in site.rglob("*.so") if "cpython" in p.name and not p.name.endswith(EXTENSION_SUFFIX)]
    problems += [f"{LAYER}: {p.relative_to(site)} is not built for arm64 CPython 3.12" for p in foreign]
    stray = [p for p in site.rglob("*.pyc") if PYC_TAG not in p.name]
    problems += [f"{LAYER}: {p.relative_to(site)} was compiled by another Python" for p in stray]
    if (site / "tasksync" / "tests").exists():
        problems.append(f"{LAYER}: tasksync/tests must not ship")
    return problems + check_no_dev_tools(site)


def check_no_dev_tools(site: Path) -> list[str]:
    """The layer holds only what the functions import: no simulator, local runner or CLI code."""
    problems = [f"{LAYER}: {path} must not ship (dev tools)" for path in DEV_TOOL_PATHS if (site / path).exists()]
    for source in sorted((site / "tasksync").rglob("*.py")):
        if DEV_TOOL_PACKAGE in source.read_text(encoding="utf-8", errors="replace"):
            problems.append(f"{LAYER}: {source.relative_to(site)} refers to {DEV_TOOL_PACKAGE}, which does not ship")
    return problems


def check_function(build_dir: Path, logical_id: str) -> list[str]:
    code = build_dir / logical_id
    if not (code / "app.py").is_file():
        return [f"{logical_id}: no app.py"]
    return check_sources(sorted(code.glob("*.py")), build_dir)


def check_build(build_dir: Path) -> list[str]:
    if not (build_dir / "template.yaml").is_file():
        return [f"{build_dir}: no template.yaml (did sam build run?)"]
    problems = check_layer(build_dir)
    for logical_id in FUNCTIONS:
        problems += check_function(build_dir, logical_id)
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.support.check_build <sam build directory>", file=sys.stderr)
        return 2
    problems = check_build(Path(argv[0]))
    for problem in problems:
        print(f"check_build: {problem}", file=sys.stderr)
    if problems:
        print(f"check_build: {len(problems)} problem(s) in {argv[0]}", file=sys.stderr)
        return 1
    print(f"check_build: {argv[0]} ok (layer and {len(FUNCTIONS)} functions precompiled for {PYC_TAG})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
