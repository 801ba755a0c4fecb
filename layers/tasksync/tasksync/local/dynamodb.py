"""DynamoDB Local (AWS's own engine, a Java jar in .tools/dynamodb) as a child process.

It runs in memory with telemetry off. It has no bind-address option and listens on every
interface; we only ever talk to it on 127.0.0.1. It runs in its own process group so that a
Ctrl-C in the terminal reaches only the runner, which then stops it after the worker is done.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# A cold JVM on two busy cores can take several seconds; this only bounds a hang.
START_DEADLINE_SECONDS = 60.0
START_ATTEMPTS = 3
STOP_DEADLINE_SECONDS = 10.0


class DynamoDBLocalError(RuntimeError):
    pass


def java_available() -> bool:
    return shutil.which("java") is not None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DynamoDBLocal:
    """One DynamoDB Local process: `start()` returns once it answers, `stop()` ends it."""

    def __init__(self, install_dir: Path, log_path: Path) -> None:
        self.install_dir = install_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def jar(self) -> Path:
        return self.install_dir / "DynamoDBLocal.jar"

    def installed(self) -> bool:
        return self.jar.is_file() and java_available()

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise DynamoDBLocalError("DynamoDB Local is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start on a free port; return the endpoint URL once it answers."""
        self.launch()
        return self.wait_until_ready()

    def launch(self) -> None:
        """Start the process and return at once (the JVM takes seconds; do other work meanwhile)."""
        if not self.installed():
            raise DynamoDBLocalError(f"DynamoDB Local needs java and {self.jar} (run `make setup`)")
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError("java is not on PATH")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    java,
                    # A quick start matters more than peak speed for a local, lightly used table:
                    # C1 only and the serial GC roughly halve the JVM's start-up time.
                    "-XX:TieredStopAtLevel=1",
                    "-XX:+UseSerialGC",
                    f"-Djava.library.path={self.install_dir / 'DynamoDBLocal_lib'}",
                    "-jar",
                    str(self.jar),
                    "-inMemory",
                    "-sharedDb",
                    "-disableTelemetry",
                    "-port",
                    str(self.port),
                ],
                cwd=self.install_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def wait_until_ready(self) -> str:
        """The endpoint once DynamoDB Local answers; relaunched on another port if it lost its port."""
        for _ in range(START_ATTEMPTS):
            if self._answers():
                return self.endpoint
            # The port was free when probed but taken before java bound it: java exited.
            self.launch()
        raise DynamoDBLocalError(f"DynamoDB Local exited at start-up {START_ATTEMPTS} times:\n{self._log_tail()}")

    def _answers(self) -> bool:
        process = self.process
        if process is None:
            raise DynamoDBLocalError("DynamoDB Local was not launched")
        probe = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any credentials
            config=Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1}),
        )
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                probe.list_tables(Limit=1)
            except (BotoCoreError, ClientError):
                time.sleep(0.1)  # polling a process that is still starting: nothing to wait on
                continue
            return True
        self.stop()
        raise DynamoDBLocalError(f"DynamoDB Local did not answer within {START_DEADLINE_SECONDS:.0f}s")

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

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""
