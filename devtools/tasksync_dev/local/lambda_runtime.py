"""Run the Lambda handlers in this process, the way Lambda would call them.

Each handler is loaded from the file the template names (CodeUri + Handler), under a module
name unique to this run: every handler module is called `app` and caches its clients at
first use, so a fresh copy per local stack starts from the environment of that stack.
Calls get a LambdaContext with the function's name, memory and a deadline from its Timeout.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tasksync_dev.local.template import FunctionDefinition

ACCOUNT_ID = "123456789012"  # the account moto uses; only ever appears in local ARNs
_module_numbers = itertools.count()
# Loading a module reads POWERTOOLS_SERVICE_NAME from the process environment, so loads are
# serialised while that variable is switched.
_load_lock = threading.Lock()


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


@contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


class LocalFunction:
    """One template function: its handler module, loaded from file, and how to invoke it."""

    def __init__(
        self,
        *,
        logical_id: str,
        definition: FunctionDefinition,
        repo_root: Path,
        function_name: str,
        service_name: str,
        region: str,
        after_invoke: Callable[[], None] | None = None,
    ) -> None:
        self.logical_id = logical_id
        self.definition = definition
        self.function_name = function_name
        self.service_name = service_name
        self.region = region
        self._after_invoke = after_invoke
        module_file, _, self._handler_name = definition["handler"].rpartition(".")
        self.path = repo_root / definition["code_uri"] / f"{module_file.replace('.', '/')}.py"
        self.module_name = f"tasksync_local_{logical_id.lower()}_{next(_module_numbers)}"
        self.module: ModuleType | None = None

    def load(self) -> ModuleType:
        """Import the handler file; call once the stack's environment is in os.environ."""
        spec = importlib.util.spec_from_file_location(self.module_name, self.path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.logical_id}'s handler from {self.path}")
        module = importlib.util.module_from_spec(spec)
        # Each function gets its own Powertools service name, hence its own logger and log
        # format state: the three run in parallel threads here, unlike in Lambda.
        with _load_lock, _environment_variable("POWERTOOLS_SERVICE_NAME", self.service_name):
            sys.modules[self.module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(self.module_name, None)
                raise
        if not callable(getattr(module, self._handler_name, None)):
            raise ImportError(f"{self.path} has no handler function {self._handler_name}")
        self.module = module
        return module

    def unload(self) -> None:
        sys.modules.pop(self.module_name, None)
        self.module = None

    def context(self) -> LocalLambdaContext:
        return LocalLambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.definition["memory_mb"],
            timeout_seconds=self.definition["timeout_seconds"],
            region=self.region,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler as Lambda would; its exceptions propagate (the caller decides)."""
        module = self.module if self.module is not None else self.load()
        handler: Callable[[dict[str, Any], LocalLambdaContext], Any] = getattr(module, self._handler_name)
        try:
            return handler(event, self.context())
        finally:
            if self._after_invoke is not None:
                self._after_invoke()
