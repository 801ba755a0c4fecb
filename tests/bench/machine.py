"""The machine and the library versions a run measured on (they go at the top of the report)."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("boto3", "botocore", "aws-lambda-powertools", "pydantic", "pydantic-core", "requests")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_summary() -> str:
    """A markdown list: CPU, cores, memory, OS, Python and the library versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    lines = [
        f"- CPU: {_cpu_model()} ({platform.machine()}), nproc {os.cpu_count()}, memory {_memory_gib()}",
        f"- OS: {platform.platform()}; load average at the start {load[0]:.2f}",
        f"- Python {platform.python_version()} ({sys.implementation.name})",
        "- " + ", ".join(f"{package} {_version(package)}" for package in PACKAGES),
    ]
    return "\n".join(lines)
