"""What `make run` keeps: fixed table names in .local/dynamodb with the real APIs, a name unique to
the run in sandbox mode; `make run FRESH=1` (--fresh) deletes the kept tables first."""

from __future__ import annotations

from pathlib import Path

from tasksync_dev.local.__main__ import _arguments
from tasksync_dev.local.dynamodb import DynamoDBLocal
from tasksync_dev.local.persistence import KEPT_TABLE_PREFIX, Persistence
from tasksync_dev.local.stack import LocalStack


def test_real_api_runs_keep_their_tables_under_fixed_names(tmp_path: Path) -> None:
    stack = LocalStack(
        {"TASKSYNC_LOCAL_DIR": str(tmp_path), "CLOSE_API_KEY": "k", "CHARTMOGUL_API_KEY": "k"}, fresh=False
    )
    assert stack.persistence.keeps_tables
    assert stack.prefix == KEPT_TABLE_PREFIX
    assert "-dbPath" in DynamoDBLocal(tmp_path, tmp_path / "log", data_dir=stack.persistence.data_dir).command(1)


def test_sandbox_runs_start_from_nothing_each_time(tmp_path: Path) -> None:
    first, second = (LocalStack({"TASKSYNC_LOCAL_DIR": str(tmp_path)}) for _ in range(2))
    assert not first.persistence.keeps_tables
    assert first.prefix != second.prefix
    assert "-inMemory" in DynamoDBLocal(tmp_path, tmp_path / "log").command(1)


def test_fresh_forgets_the_kept_tables(tmp_path: Path) -> None:
    persistence = Persistence(tmp_path, keeps_tables=True)
    persistence.data_dir.mkdir()
    (persistence.data_dir / "shared-local-instance.db").write_bytes(b"links")
    assert persistence.forget()
    assert not persistence.data_dir.exists()
    assert not persistence.forget()
    assert _arguments(["--fresh"]).fresh
    assert not _arguments([]).fresh
