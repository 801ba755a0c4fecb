"""Records every AWS call the Lambda functions' own code makes during the test session.

A pytest plugin (listed in tests/conftest.py). At configure time it makes every botocore client
created afterwards (boto3's default session, Powertools' own sessions, any other) register a
`before-parameter-build` handler: botocore emits it once per API call with the operation model
and the caller's parameters, before any retry. The call is attributed to a function when a
frame of that function's handler file (`<CodeUri>/app.py` of template.yaml) is on the stack:
the same test process also runs fixtures, the CLI and the simulators, whose calls are not any
function's. In-process only: the handlers run in the test process (tests/support/handlers.py)
and in the local stack's threads.

The comparison (tests/iam/test_coverage.py) runs last in the session. Its "granted but never
called" half needs every recording test to have run: `recording_complete()` says whether they
did. Under `make test` (TASKSYNC_IAM_COVERAGE=required) an incomplete recording fails instead.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tests.support.iam.calls import Permission, permissions_of_call
from tests.support.template import REPO_ROOT, function_definitions, load_template

# The test folders whose tests drive the handlers; a partial run of them records partially.
RECORDING_DIRS = ("tests/integration", "tests/e2e")
COVERAGE_TEST_DIR = "tests/iam"
REQUIRED_VARIABLE = "TASKSYNC_IAM_COVERAGE"

_lock = threading.Lock()
_recorded: dict[str, set[Permission]] = defaultdict(set)
_state: dict[str, Any] = {"collected": set(), "deselected": 0, "failed": []}


def recorded() -> dict[str, set[Permission]]:
    """Function logical id -> the permissions its code used so far in this session."""
    with _lock:
        return {function: set(permissions) for function, permissions in _recorded.items()}


def coverage_required() -> bool:
    return os.environ.get(REQUIRED_VARIABLE) == "required"


def _handler_files() -> dict[str, str]:
    """Absolute handler file path -> function logical id, from template.yaml."""
    files: dict[str, str] = {}
    for logical, definition in function_definitions().items():
        module = definition["handler"].rpartition(".")[0].replace(".", "/")
        files[str((REPO_ROOT / definition["code_uri"] / f"{module}.py").resolve())] = logical
    return files


class _Recorder:
    def __init__(self) -> None:
        self.handler_files = _handler_files()
        self.known = frozenset(load_template().get("Resources", {}))

    def function_on_stack(self) -> str | None:
        frame = sys._getframe(2)  # a cheap stack walk, once per AWS call
        while frame is not None:
            function = self.handler_files.get(frame.f_code.co_filename)
            if function is not None:
                return function
            frame = frame.f_back
        return None

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = self.function_on_stack()
        if function is None:
            return
        service = model.service_model.signing_name
        permissions = permissions_of_call(service, model.name, params, self.known)
        with _lock:
            _recorded[function].update(permissions)


def _install(recorder: _Recorder) -> None:
    original = botocore.session.Session.create_client
    if getattr(original, "_iam_recording", False):
        return

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", recorder.before_parameter_build)
        return client

    create_client._iam_recording = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    _install(_Recorder())


def _relative_file(item: pytest.Item) -> str:
    return Path(str(item.path)).resolve().relative_to(REPO_ROOT).as_posix()


def _recording_files() -> set[str]:
    return {
        path.relative_to(REPO_ROOT).as_posix()
        for directory in RECORDING_DIRS
        for path in (REPO_ROOT / directory).glob("test_*.py")
    }


def pytest_deselected(items: list[pytest.Item]) -> None:
    _state["deselected"] += sum(1 for item in items if _relative_file(item).startswith(RECORDING_DIRS))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The coverage check goes last, after every test that records.
    items.sort(key=lambda item: _relative_file(item).startswith(COVERAGE_TEST_DIR))
    _state["collected"] = {_relative_file(item) for item in items}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and report.nodeid.startswith(RECORDING_DIRS):
        _state["failed"].append(report.nodeid)


def recording_gaps() -> list[str]:
    """Why the recording may be incomplete (empty: every recording test ran and passed)."""
    gaps = []
    missing = sorted(_recording_files() - _state["collected"])
    if missing:
        gaps.append(f"{len(missing)} recording test files not collected ({missing[0]}, ...)")
    if _state["deselected"]:
        gaps.append(f"{_state['deselected']} recording tests deselected (-k/-m)")
    gaps += [f"failed: {nodeid}" for nodeid in _state["failed"]]
    if "PYTEST_XDIST_WORKER" in os.environ:
        gaps.append("pytest-xdist worker: each worker records only its own share")
    return gaps
