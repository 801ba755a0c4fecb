"""Capture what the process logs, in the shape each logger writes it, to scan it for secrets.

Powertools loggers write JSON (or the local runner's one-line format) with every `extra`
field; a plain `logging.Formatter` would hide those fields, and a leak could hide in them. So
the tap copies the formatter of each logger's own first handler.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable


class LogTap:
    """Add a handler to the root logger and to every logger that has handlers of its own."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self._attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach(self) -> LogTap:
        loggers: list[logging.Logger] = [logging.getLogger()]
        loggers += [
            candidate
            for candidate in logging.Logger.manager.loggerDict.values()
            if isinstance(candidate, logging.Logger) and candidate.handlers
        ]
        for logger in loggers:
            if any(handler is tap for _, tap in self._attached for handler in logger.handlers):
                continue
            tap = logging.StreamHandler(self.buffer)
            own = next((h.formatter for h in logger.handlers if h.formatter is not None), None)
            tap.setFormatter(own or logging.Formatter("%(levelname)s %(name)s %(message)s"))
            logger.addHandler(tap)
            self._attached.append((logger, tap))
        return self

    def detach(self) -> None:
        for logger, tap in self._attached:
            logger.removeHandler(tap)
        self._attached = []

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets (by position, never by value) that appear in ``text``."""
    return [f"secret #{index}" for index, secret in enumerate(secrets) if secret and secret in text]
