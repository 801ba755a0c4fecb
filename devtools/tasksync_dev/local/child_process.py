"""A server in a child process on a free 127.0.0.1 port: what DynamoDB Local and moto share.

A child process rather than a thread, so that the server has its own interpreter (or JVM) and
the second core: the local stack's receiver, worker and simulators already share one Python
process and its GIL. Each runs in its own process group, so that a Ctrl-C in the terminal
reaches only the runner, which then stops it once the worker is done.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from pathlib import Path

# A cold JVM or interpreter on two busy cores can take several seconds; this only bounds a hang.
START_DEADLINE_SECONDS = 60.0
START_ATTEMPTS = 3
STOP_DEADLINE_SECONDS = 10.0
PROBE_POLL_SECONDS = 0.1


class ChildServerError(RuntimeError):
    pass


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ChildServer:
    """One server process: `start()` returns its endpoint once it answers, `stop()` ends it.

    Subclasses name themselves and give the command line for a port; `answers()` may be
    replaced by a protocol-level probe.
    """

    name = "server"

    def __init__(self, log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise ChildServerError(f"{self.name} is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start on a free port; return the endpoint URL once it answers."""
        self.launch()
        return self.wait_until_ready()

    def launch(self) -> None:
        """Start the process and return at once (do other work while it boots)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - argv from the subclass, no shell
                self.command(self.port),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def wait_until_ready(self) -> str:
        """The endpoint once the server answers; relaunched on another port if it lost its port."""
        for _ in range(START_ATTEMPTS):
            if self._answers_before_deadline():
                return self.endpoint
            # The port was free when probed but taken before the server bound it: it exited.
            self.launch()
        raise ChildServerError(f"{self.name} exited at start-up {START_ATTEMPTS} times:\n{self.log_tail()}")

    def answers(self) -> bool:
        """One probe: any HTTP answer at all means the server is listening."""
        if self.port is None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return True

    def _answers_before_deadline(self) -> bool:
        process = self.process
        if process is None:
            raise ChildServerError(f"{self.name} was not launched")
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if self.answers():
                return True
            time.sleep(PROBE_POLL_SECONDS)  # polling a process that is still starting: nothing to wait on
        self.stop()
        raise ChildServerError(f"{self.name} did not answer within {START_DEADLINE_SECONDS:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        self.port = None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""
