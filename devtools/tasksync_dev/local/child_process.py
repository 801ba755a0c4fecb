"""A server in a child process on a free 127.0.0.1 port: what DynamoDB Local and moto share.

A child process rather than a thread, so that the server has its own interpreter (or JVM) and
the second core: the local stack's receiver, worker and simulators already share one Python
process and its GIL. Each runs in its own process group, so that a Ctrl-C in the terminal
reaches only the runner, which then stops it once the worker is done.

The same process group means a `kill -9` of the runner leaves the child running. So a child
started with a ``pid_path`` records its pid and command line there, and removes the file when
it stops; the next runner stops whatever a dead runner's records still name (`stop_orphans`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
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

    def __init__(self, log_path: Path, cwd: Path | None = None, pid_path: Path | None = None) -> None:
        self.log_path = log_path
        self.cwd = cwd
        self.pid_path = pid_path
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
        command = self.command(self.port)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - argv from the subclass, no shell
                command,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        if self.pid_path is not None:
            record = {"name": self.name, "pid": self.process.pid, "command": command}
            self.pid_path.parent.mkdir(parents=True, exist_ok=True)
            self.pid_path.write_text(json.dumps(record) + "\n", encoding="utf-8")

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
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and self.pid_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""


def running_command(pid: int) -> list[str] | None:
    """The running process's argv, or None when it is gone (or a zombie: it has no argv)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # Linux, and the process is gone
        answer = subprocess.run(  # noqa: S603 - fixed argv, no shell (macOS has no /proc)
            ["/bin/ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return answer.stdout.split() or None
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def _gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if running_command(pid) is None:
            return True
        time.sleep(PROBE_POLL_SECONDS)  # a process we signalled, exiting: nothing to wait on
    return running_command(pid) is None


def stop_orphans(pid_dir: Path) -> list[str]:
    """Stop the child servers that a killed runner's pid records (``*.pid`` in ``pid_dir``) still
    name; return a line for each one stopped. A pid is signalled only while its command line is
    still the one recorded, so a pid the system has reused for another program is left alone.
    """
    stopped: list[str] = []
    for path in sorted(pid_dir.glob("*.pid")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid, command, name = int(record["pid"]), list(record["command"]), str(record["name"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        running = running_command(pid)
        if running is not None and running == command:
            # Its own process group (process_group=0 at launch): the group id is the pid.
            for signum, wait in ((signal.SIGTERM, STOP_DEADLINE_SECONDS), (signal.SIGKILL, STOP_DEADLINE_SECONDS)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signum)
                if _gone(pid, time.monotonic() + wait):
                    break
            stopped.append(f"{name} (pid {pid})")
        path.unlink(missing_ok=True)
    return stopped
