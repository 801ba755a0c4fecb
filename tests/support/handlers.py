"""Load and call the Lambda handlers the way Lambda does, through the local runner's emulation.

The tests and `make run` share one Lambda emulation (tasksync_dev.local.lambda_runtime and
sqs_source): every handler module is called `app`, and each builds its clients at first use
from the environment, so tests load a fresh copy under a unique name once they have set the env.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from tasksync_dev.local.lambda_runtime import LocalLambdaContext, load_handler_module
from tests.support.template import REPO_ROOT

_counter = itertools.count()


def load_handler(function_dir: str) -> ModuleType:
    path = REPO_ROOT / "functions" / function_dir / "app.py"
    return load_handler_module(path, f"tasksync_test_handler_{function_dir}_{next(_counter)}")


def lambda_context(function_name: str = "tasksync-test", memory_mb: int = 256) -> LocalLambdaContext:
    """A Lambda context with 30 s left, as the template's default Timeout gives."""
    return LocalLambdaContext(function_name=function_name, memory_limit_in_mb=memory_mb, timeout_seconds=30.0)


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO_ROOT / "events" / name).read_text())
    return data


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)


# The name tests on branches written before the shared emulation use; new tests call lambda_context().
FakeLambdaContext = lambda_context
