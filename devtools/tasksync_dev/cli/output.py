"""How the CLI talks back: results on stdout, progress and errors on stderr, one line each.

Results go to stdout so that `--json` output can be piped; progress and errors go to stderr
so that they never mix into it. No value printed here ever comes from a secret: commands
hand over ids, counts and states only.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tasksync.upstream_text import strip_controls, upstream_text

# Exit codes: 2 for anything the operator can fix by changing the command line or the target
# (argparse uses 2 as well), 1 when the stack or an API failed us.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandFailed(Exception):
    """A command cannot go on; ``message`` is the one line the operator sees."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CommandFailed):
    """Bad input: an unknown target, a malformed date, an ambiguous subscription."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def one_line(text: str, limit: int = 500) -> str:
    """Exactly one line, bounded, without escape sequences, control characters or key values.

    Errors and reasons may quote Close's or ChartMogul's text (tasksync.upstream_text).
    """
    flat = " ".join(upstream_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def print_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str), file=out or sys.stdout)


def print_table(rows: list[list[str]], headers: list[str], out: TextIO | None = None) -> None:
    """Left-aligned columns; the last column is not padded (it may be a long reason)."""
    stream = out or sys.stdout
    table = [headers, *[[strip_controls(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip(), file=stream)


class Progress:
    """A counter line on stderr for long operations (redrawn in place on a terminal)."""

    def __init__(
        self,
        label: str,
        *,
        out: TextIO | None = None,
        every_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.count = 0
        self._out = out or sys.stderr
        self._every = every_seconds
        self._clock = clock
        # The first line comes after `every_seconds`: a quick operation shows only its total.
        self._last_shown = clock()
        self._shown = False
        self._tty = bool(getattr(self._out, "isatty", lambda: False)())

    def add(self, amount: int = 1) -> None:
        self.count += amount
        if self._clock() - self._last_shown >= self._every:
            self._show()

    def _show(self) -> None:
        self._last_shown = self._clock()
        self._shown = True
        line = f"{self.label}: {self.count}"
        if self._tty:
            self._out.write(f"\r{line}")
        else:
            self._out.write(f"{line}\n")
        self._out.flush()

    def clear(self) -> None:
        """End without a final count (the command prints its total once, on stdout): on a
        terminal the progress line is erased; elsewhere its lines stay as they were."""
        if self._tty and self._shown:
            self._out.write("\r\033[K")
            self._out.flush()

    def done(self, *, only_if_shown: bool = False) -> None:
        """Show the final count (even a zero), or with ``only_if_shown`` only after progress lines."""
        if only_if_shown and not self._shown:
            return
        self._show()
        if self._tty:
            self._out.write("\n")
            self._out.flush()
