"""stop_orphans stops what a killed runner's pid records name, and only while the pid still runs
the recorded command (a pid the system reused for another program is left alone)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasksync_dev.local.child_process import running_command, stop_orphans

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(SLEEPER, process_group=0)
    # Right after the exec the kernel may still show no command line for a moment.
    deadline = time.monotonic() + 10
    while running_command(process.pid) != SLEEPER and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a process that is starting: nothing to wait on
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _record(pid_dir: Path, pid: int, command: list[str]) -> None:
    pid_dir.mkdir(exist_ok=True)
    (pid_dir / "server.pid").write_text(json.dumps({"name": "a server", "pid": pid, "command": command}))


def test_a_recorded_orphan_is_stopped_and_its_record_removed(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    _record(tmp_path, sleeper.pid, SLEEPER)
    assert stop_orphans(tmp_path) == [f"a server (pid {sleeper.pid})"]
    assert sleeper.wait(timeout=30) is not None
    assert list(tmp_path.iterdir()) == []


def test_a_pid_running_another_command_is_left_alone(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    _record(tmp_path, sleeper.pid, ["/usr/bin/java", "-jar", "DynamoDBLocal.jar"])
    assert stop_orphans(tmp_path) == []
    assert sleeper.poll() is None
    assert list(tmp_path.iterdir()) == []


def test_a_record_of_a_process_that_is_gone_is_dropped(tmp_path: Path) -> None:
    _record(tmp_path, 2**22 + 1, SLEEPER)  # above any pid Linux hands out by default
    (tmp_path / "broken.pid").write_text("not json")
    assert stop_orphans(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
