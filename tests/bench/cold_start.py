"""Cold start: import time of each handler module on the built layer, against `import boto3`.

The layer `sam build` makes is for arm64 (pydantic_core is an aarch64 extension), which cannot
load on an x86_64 machine. So the measurement uses an x86_64 copy of the same layer: the pinned
requirements installed for manylinux2014_x86_64 / CPython 3.12, the tasksync package copied
from the source tree, everything compiled to .pyc with unchecked-hash invalidation (what a
deployment ships, so no process ever compiles or stats sources). Every sample is a fresh process
started with -S (no site-packages, so only the layer is importable), PYTHONDONTWRITEBYTECODE=1,
and the time is taken inside it around the import, so interpreter start-up is left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.bench.report import BenchResult, Measurement, markdown_table, median, ms

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
LAYER_CACHE = REPO_ROOT / ".tools" / "bench" / "layer-x86_64"
REQUIREMENTS = REPO_ROOT / "layers" / "tasksync" / "requirements.txt"

# Goals of issue 6: receiver ≤ 1.3× `import boto3`, worker and reconciler ≤ 2×.
FUNCTIONS = {
    "receiver": ("ReceiverFunction", 1.3, "_get_receiver"),
    "worker": ("WorkerFunction", 2.0, "get_worker"),
    "reconciler": ("ReconcilerFunction", 2.0, "get_reconciler"),
}

# What each handler reads at cold start. No request leaves the process: clients are only built.
HANDLER_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "POWERTOOLS_SERVICE_NAME": "tasksync-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "TaskSyncBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/tasksync-events.fifo",
    "STATE_TABLE": "tasksync-state",
    "IDEMPOTENCY_TABLE": "tasksync-idempotency",
    "CLOSE_WEBHOOK_SIGNATURE_KEY": "00" * 32,
    "CLOSE_API_KEY": "bench-close-key",
    "CHARTMOGUL_API_KEY": "bench-chartmogul-key",
    "PYTHONDONTWRITEBYTECODE": "1",
}

# Runs inside the fresh process: time the import, then the first-invocation set-up.
_PROBE = """
import json, sys, time
start = time.perf_counter()
{import_statement}
imported = time.perf_counter()
{init_statement}
done = time.perf_counter()
print(json.dumps({{"import": imported - start, "init": done - imported}}))
"""


@dataclass(frozen=True)
class Target:
    label: str
    path: list[Path]
    import_statement: str
    init_statement: str = "pass"


def ensure_sam_build() -> None:
    if not (BUILD_DIR / "TaskSyncLayer" / "python").is_dir():
        subprocess.run(["make", "sam-build"], cwd=REPO_ROOT, check=True)


def _requirements_stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def build_x86_layer(python: str) -> Path:
    """The x86_64 twin of the built layer (dependencies cached across runs, tasksync fresh)."""
    target = LAYER_CACHE / "python"
    stamp = LAYER_CACHE / "requirements.sha256"
    if not stamp.exists() or stamp.read_text() != _requirements_stamp():
        shutil.rmtree(LAYER_CACHE, ignore_errors=True)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), "--platform", "manylinux2014_x86_64", "--python-version", "3.12",
                "--implementation", "cp", "--only-binary=:all:", "-r", str(REQUIREMENTS),
            ],
            check=True,
            capture_output=True,  # pip's index warnings are noise here; it raises on failure
        )  # fmt: skip
        shutil.rmtree(target / "bin", ignore_errors=True)
        stamp.write_text(_requirements_stamp())
    # The built layer's tasksync is the source tree's; copy the source so edits are measured.
    shutil.rmtree(target / "tasksync", ignore_errors=True)
    shutil.copytree(
        BUILD_DIR / "TaskSyncLayer" / "python" / "tasksync"
        if not (REPO_ROOT / "layers" / "tasksync" / "tasksync").is_dir()
        else REPO_ROOT / "layers" / "tasksync" / "tasksync",
        target / "tasksync",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    functions = LAYER_CACHE / "functions"
    shutil.rmtree(functions, ignore_errors=True)
    for name in FUNCTIONS:
        (functions / name).mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "functions" / name / "app.py", functions / name / "app.py")
    _compile(python, [target, functions])
    return LAYER_CACHE


def _compile(python: str, paths: list[Path]) -> None:
    code = (
        "import compileall, py_compile, sys\n"
        "mode = py_compile.PycInvalidationMode.UNCHECKED_HASH\n"
        "ok = all(compileall.compile_dir(p, quiet=2, workers=0, invalidation_mode=mode) for p in sys.argv[1:])\n"
        "sys.exit(0 if ok else 1)\n"
    )
    # Some vendored test files do not compile under 3.12; what the import touches does.
    subprocess.run([python, "-c", code, *map(str, paths)], check=False)


def _targets(layer: Path) -> list[Target]:
    python_dir = layer / "python"
    targets = [
        Target("import boto3", [python_dir], "import boto3"),
        Target("import boto3 + SQS client", [python_dir], "import boto3", "boto3.client('sqs')"),
    ]
    for name, (_, _, init) in FUNCTIONS.items():
        targets.append(Target(name, [layer / "functions" / name, python_dir], "import app", f"app.{init}()"))
    return targets


def _sample(python: str, target: Target) -> dict[str, float]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        **HANDLER_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join(map(str, target.path)),
    }
    probe = _PROBE.format(import_statement=target.import_statement, init_statement=target.init_statement)
    done = subprocess.run(
        [python, "-S", "-c", probe], env=environment, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target.label}: the probe failed:\n{done.stderr[-2000:]}")
    sample: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return sample


def _import_breakdown(python: str, layer: Path, function: str) -> list[tuple[str, float]]:
    """Where a handler's import time goes (`-X importtime`): the cumulative time of each module the
    handler imports directly, largest first. A shared dependency is charged to whichever of them
    imports it first, which is the order Python pays in."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        **HANDLER_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(layer / "functions" / function), str(layer / "python")]),
    }
    done = subprocess.run(
        [python, "-S", "-X", "importtime", "-c", "import app"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    direct: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match is None:
            continue
        depth = len(match.group(3)) // 2
        if depth == 1:
            direct[match.group(4)] += int(match.group(2)) / 1e6
        elif depth == 0 and match.group(4) == "app":
            direct["app (its own body)"] += int(match.group(1)) / 1e6
    return sorted(direct.items(), key=lambda item: -item[1])


def run(*, samples: int) -> BenchResult:
    ensure_sam_build()
    python = sys.executable
    layer = build_x86_layer(python)
    targets = _targets(layer)
    for target in targets:  # one unmeasured run each: the page cache holds the files afterwards
        _sample(python, target)
    measured: dict[str, list[dict[str, float]]] = defaultdict(list)
    for _ in range(samples):
        # Interleaved, so a burst of load on the machine hits every target alike.
        for target in targets:
            measured[target.label].append(_sample(python, target))
    imports = {label: median([s["import"] for s in runs]) for label, runs in measured.items()}
    totals = {label: median([s["import"] + s["init"] for s in runs]) for label, runs in measured.items()}
    baseline = imports["import boto3"]
    result = BenchResult()
    result.rows.append(Measurement("cold start", "import boto3 (baseline)", ms(baseline), goal=f"median of {samples}"))
    for name, (_, goal, _) in FUNCTIONS.items():
        ratio = imports[name] / baseline
        result.rows.append(
            Measurement(
                "cold start",
                f"{name}: import app",
                ms(imports[name]),
                "import boto3",
                ratio,
                f"≤ {goal:g}×",
                ratio <= goal,
            )
        )
        result.figures[f"cold_import_{name}"] = imports[name]
        result.figures[f"cold_total_{name}"] = totals[name]
    result.figures["cold_import_boto3"] = baseline
    detail_rows = [
        [
            label,
            ms(imports[label]),
            ms(totals[label] - imports[label]),
            ms(totals[label]),
            f"{imports[label] / baseline:.2f}×",
        ]
        for label in measured
    ]
    breakdowns = {name: _import_breakdown(python, layer, name) for name in FUNCTIONS}
    result.details = "\n\n".join(
        [
            f"Medians of {samples} fresh processes each (interleaved). *import* is the module import (what"
            " Lambda's init phase runs); *first-invocation set-up* is the handler's lazily built clients"
            " (`_get_receiver()`, `get_worker()`, `get_reconciler()`; no request leaves the process).",
            markdown_table(
                ["target", "import", "first-invocation set-up", "total", "import ÷ import boto3"], detail_rows
            ),
            "Where each handler's import goes (`python -X importtime`; the instrumentation inflates the"
            " times): the cumulative time of each module the handler imports directly, largest first,"
            " modules under 10 ms left out. A dependency shared by two of them is charged to the first.",
            *[
                f"*{name}*: "
                + ", ".join(f"`{module}` {ms(seconds)}" for module, seconds in breakdown if seconds >= 0.01)
                for name, breakdown in breakdowns.items()
            ],
        ]
    )
    return result
