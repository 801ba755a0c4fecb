"""A loop in a daemon thread that can be stopped: what the local poller and schedule share."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """Subclasses implement `_run`, checking `self._stopping` between iterations."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop looping; the iteration in hand is finished first. False when it is still running."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if not alive:
            self._thread = None
        return not alive
