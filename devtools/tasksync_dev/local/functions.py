"""The local stack's three Lambda functions: the template's handlers, loaded from their files.

Apart from the stack because loading is about Powertools as much as about Lambda: each handler
module has its `logger` and `metrics` at module level, and in one process the three must not
share a cold-start metric, a log format or metrics left over from another invocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from tasksync_dev.local.lambda_runtime import LocalFunction
from tasksync_dev.local.logs import quiet_metrics, suppress_cold_start_metric, use_concise_format
from tasksync_dev.local.template import FunctionDefinition

# The template's logical ids the runner wires by name.
RECEIVER, WORKER, RECONCILER = "ReceiverFunction", "WorkerFunction", "ReconcilerFunction"
# Powertools service names: one logger (and log column) per function.
SERVICE_NAMES = {RECEIVER: "receiver", WORKER: "worker", RECONCILER: "reconciler"}


class Functions:
    """Receiver, worker and reconciler, each invoked as Lambda would call its handler."""

    def __init__(self) -> None:
        self._loaded: dict[str, LocalFunction] = {}
        self._metrics: list[Metrics] = []

    def load(
        self,
        definitions: Mapping[str, FunctionDefinition],
        *,
        repo_root: Path,
        prefix: str,
        region: str,
        concise_logs: bool,
    ) -> None:
        """Import the three handlers; call once the stack's environment is in os.environ."""
        for logical_id in (RECEIVER, WORKER, RECONCILER):
            self._loaded[logical_id] = LocalFunction(
                logical_id=logical_id,
                definition=definitions[logical_id],
                repo_root=repo_root,
                function_name=f"{prefix}-{logical_id}",
                service_name=SERVICE_NAMES[logical_id],
                region=region,
                after_invoke=self._after_invoke,
            )
        modules = [function.load() for function in self._loaded.values()]
        suppress_cold_start_metric()
        loggers = [m.logger for m in modules if isinstance(getattr(m, "logger", None), Logger)]
        self._metrics = [m.metrics for m in modules if isinstance(getattr(m, "metrics", None), Metrics)]
        if concise_logs:
            use_concise_format(loggers)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        return self._loaded[logical_id].invoke(event)

    def unload(self) -> None:
        for function in self._loaded.values():
            function.unload()
        self._loaded = {}

    def _after_invoke(self) -> None:
        # With metrics disabled Powertools never clears its process-wide set (logs.quiet_metrics).
        quiet_metrics(self._metrics)
