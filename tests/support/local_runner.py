"""`python -m tasksync_dev.local` (what `make run` runs) in a child process, as the e2e tests drive
it: what it printed, waiting for a marker in it, and stopping it with a signal. Every wait polls a
real condition with a deadline."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tasksync_dev.local.__main__ import READY_LINE
from tests.support.template import REPO_ROOT

DEADLINE_SECONDS = 30.0
START_DEADLINE_SECONDS = 90.0  # a cold JVM plus imports, on two busy cores


def poll[T](condition: Callable[[], T | None], *, what: str, timeout: float = DEADLINE_SECONDS) -> T:
    """The first truthy value of ``condition()``; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.1)


class Runner:
    """One `python -m tasksync_dev.local` process and everything it printed."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tasksync_dev.local"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, name="runner-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def text(self) -> str:
        while not self._lines.empty():
            self.output.append(self._lines.get())
        return "".join(self.output)

    def seen(self, marker: str) -> bool:
        """Whether the output holds ``marker`` yet; fails the test if the runner exited without it."""
        text = self.text()
        if marker not in text and self.process.poll() is not None and self._lines.empty():
            pytest.fail(f"the runner exited with {self.process.returncode}:\n{text}")
        return marker in text

    def wait_ready(self) -> None:
        poll(lambda: self.seen(READY_LINE), what="the ready line", timeout=START_DEADLINE_SECONDS)

    def stop(self, signum: signal.Signals) -> int:
        """Send ``signum``, wait for the exit and the end of the output; the exit code."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)  # the runner has exited: its output ends
        self.text()
        return code

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
