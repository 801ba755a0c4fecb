"""What `make run` keeps: fixed table names in .local/dynamodb with the real APIs, a name unique to
the run in sandbox mode; `make run FRESH=1` (--fresh) deletes the kept tables first."""

from __future__ import annotations

from pathlib import Path

from tasksync_dev.local.__main__ import _arguments
from tasksync_dev.local.dynamodb import DynamoDBLocal
from tasksync_dev.local.persistence import KEPT_SANDBOX_TABLE_PREFIX, KEPT_TABLE_PREFIX, Persistence
from tasksync_dev.local.stack import LocalStack


def test_real_api_runs_keep_their_tables_under_fixed_names(tmp_path: Path) -> None:
    stack = LocalStack(
        {"TASKSYNC_LOCAL_DIR": str(tmp_path), "CLOSE_API_KEY": "k", "CHARTMOGUL_API_KEY": "k"}, fresh=False
    )
    assert stack.persistence.keeps_tables
    assert stack.prefix == KEPT_TABLE_PREFIX
    assert "-dbPath" in DynamoDBLocal(tmp_path, tmp_path / "log", data_dir=stack.persistence.data_dir).command(1)


def test_in_process_sandbox_stacks_start_from_nothing_each_time(tmp_path: Path) -> None:
    first, second = (LocalStack({"TASKSYNC_LOCAL_DIR": str(tmp_path)}) for _ in range(2))
    assert not first.persistence.keeps_tables
    assert first.prefix != second.prefix
    assert "-inMemory" in DynamoDBLocal(tmp_path, tmp_path / "log").command(1)


def test_sandbox_state_is_taken_once_and_fresh_drops_it(tmp_path: Path) -> None:
    persistence = Persistence(tmp_path, keeps_tables=True, sandbox=True)
    assert persistence.table_prefix() == KEPT_SANDBOX_TABLE_PREFIX
    persistence.save_sandbox({"close": {"_tasks": {"task_1": {}}}})
    assert persistence.take_sandbox() == {"close": {"_tasks": {"task_1": {}}}}
    assert persistence.take_sandbox() is None  # a run killed after this start saves nothing
    persistence.save_sandbox({"close": {}})
    persistence.forget_sandbox()
    assert persistence.take_sandbox() is None
    assert _arguments(["--fresh"]).fresh
    assert not _arguments([]).fresh


def test_make_run_keeps_the_sandbox_too(tmp_path: Path) -> None:
    stack = LocalStack({"TASKSYNC_LOCAL_DIR": str(tmp_path)}, keep_sandbox=True)
    assert stack.persistence.keeps_tables
    assert stack.prefix == KEPT_SANDBOX_TABLE_PREFIX
