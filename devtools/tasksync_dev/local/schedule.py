"""EventBridge Scheduler's part: invoke the reconciler at a fixed rate, in a thread.

The first run is right away (a local stack starts cold, so it catches up at once), then one
every interval. A run that fails is logged and not retried, like the template's
`MaximumRetryAttempts: 0` on the function: the next run catches up from its checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tasksync_dev.local.background import BackgroundLoop

Invoke = Callable[[dict[str, Any]], Any]


class FixedRateSchedule(BackgroundLoop):
    def __init__(
        self,
        *,
        invoke: Invoke,
        interval_seconds: float,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._invoke = invoke
        self.interval_seconds = interval_seconds
        self._on_error = on_error
        super().__init__()
        self._running = threading.Event()
        self.runs = 0

    @property
    def busy(self) -> bool:
        return self._running.is_set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._stopping.wait(self.interval_seconds)

    def run_once(self) -> None:
        # The input the template's schedule sends (Scheduler fills in the due time).
        event = {"trigger": "schedule", "scheduled_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self._running.set()
        try:
            self._invoke(event)
        except Exception as exc:  # logged; the next run catches up from its checkpoint
            self._on_error(exc)
        finally:
            self.runs += 1
            self._running.clear()
