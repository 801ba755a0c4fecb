"""Readable local output: one short line per log record instead of Lambda's JSON.

The handlers log through Powertools exactly as in Lambda; only the last step, turning the
structured record into text, is swapped (Powertools' `json_serializer` hook) for a line like

    17:23:05 INFO  worker             event applied  event_id=ev_1 close_task=task_1 action=created ...

TASKSYNC_LOG_FORMAT=json keeps Powertools' JSON lines (add POWERTOOLS_DEV=1 to indent them).
EMF metric blobs are turned off locally: they are CloudWatch's input, not something to read.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

RUNNER_LOGGER_NAME = "tasksync_dev.local"
# Keys every Lambda record carries that add nothing to a local line.
_CONTEXT_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "stack_trace",
        "exception",
        "exception_name",
        "exception_notes",
    }
)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return str(round(value, 3))
    if isinstance(value, str):
        return value if value and not any(c.isspace() for c in value) and '"' not in value else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def concise_line(record: Mapping[str, Any]) -> str:
    """Render one structured Powertools record as `time LEVEL service message key=value...`."""
    stamp = str(record.get("timestamp", ""))
    clock = stamp[11:19] if len(stamp) >= 19 else stamp  # "2026-11-23 17:28:57,985+0000" -> 17:28:57
    level = str(record.get("level", ""))
    service = str(record.get("service", ""))
    message = record.get("message", "")
    text = message if isinstance(message, str) else _value_text(message)
    pairs = " ".join(f"{key}={_value_text(value)}" for key, value in record.items() if key not in _CONTEXT_KEYS)
    line = f"{clock} {level:<7} {service:<20} {text}" + (f"  {pairs}" if pairs else "")
    exception = record.get("exception")
    if exception:
        line += "\n" + str(exception)
    return line


def use_concise_format(loggers: Iterable[Logger]) -> None:
    """Swap the serializer of each Powertools logger's formatter for `concise_line`."""
    for logger in loggers:
        formatter = logger.registered_formatter
        if isinstance(formatter, LambdaPowertoolsFormatter):
            formatter.json_serializer = concise_line


def quiet_metrics(metrics: Iterable[Metrics]) -> None:
    """Drop what the handlers recorded: with POWERTOOLS_METRICS_DISABLED nothing is printed, but
    Powertools then never clears its (process-wide) metric set and would print it at 100 values."""
    for instance in metrics:
        instance.clear_metrics()


def suppress_cold_start_metric() -> None:
    """Powertools prints the ColdStart EMF blob even with metrics disabled; locally there is no
    cold start to measure, so mark it as already counted."""
    from aws_lambda_powertools.metrics.provider import cold_start  # noqa: PLC0415

    cold_start.is_cold_start = False


def runner_logger() -> logging.Logger:
    """The runner's own messages (start-up, retries, shutdown), in the same one-line shape."""
    logger = logging.getLogger(RUNNER_LOGGER_NAME)
    if not any(getattr(handler, "tasksync_local", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)-20s %(message)s", datefmt="%H:%M:%S")
        )
        handler.tasksync_local = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
