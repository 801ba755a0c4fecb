"""DynamoDB Local (AWS's own engine, a Java jar in .tools/dynamodb) as a child process.

It runs with telemetry off, in memory, or with ``data_dir`` in one SQLite file there that
outlives the process (`make run` with the real APIs: the links and checkpoints survive a
restart). It has no bind-address option and listens on every interface; we only ever talk to
it on 127.0.0.1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tasksync_dev.local.child_process import ChildServer, ChildServerError


class DynamoDBLocalError(ChildServerError):
    pass


def java_available() -> bool:
    return shutil.which("java") is not None


class DynamoDBLocal(ChildServer):
    """One DynamoDB Local process: `start()` returns once it answers, `stop()` ends it."""

    name = "DynamoDB Local"

    def __init__(
        self, install_dir: Path, log_path: Path, *, data_dir: Path | None = None, pid_path: Path | None = None
    ) -> None:
        super().__init__(log_path, cwd=install_dir, pid_path=pid_path)
        self.install_dir = install_dir
        self.data_dir = data_dir

    @property
    def jar(self) -> Path:
        return self.install_dir / "DynamoDBLocal.jar"

    def installed(self) -> bool:
        return self.jar.is_file() and java_available()

    def launch(self) -> None:
        if not self.installed():
            raise DynamoDBLocalError(f"DynamoDB Local needs java and {self.jar} (run `make setup`)")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        super().launch()

    def command(self, port: int) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError("java is not on PATH")
        return [
            java,
            # A quick start matters more than peak speed for a local, lightly used table:
            # C1 only and the serial GC roughly halve the JVM's start-up time.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Djava.library.path={self.install_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
            *(["-dbPath", str(self.data_dir)] if self.data_dir is not None else ["-inMemory"]),
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ]

    def answers(self) -> bool:
        # The JVM accepts connections a moment before the engine serves requests: ask it one.
        probe = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any credentials
            config=Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1}),
        )
        try:
            probe.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            return False
        return True
