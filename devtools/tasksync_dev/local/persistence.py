"""What a local run keeps in `.local/` between starts, and what a new start cleans up first.

- With the real APIs (and DynamoDB Local), the tables live in `.local/dynamodb/` under fixed names
  (`tasksync-local-<logical id>`): the links, checkpoints, customer cache and idempotency records
  survive a restart, so the first reconcile after it finds the events already applied and makes
  no ChartMogul write. Against a customer's real ChartMogul, a lost link is a duplicate task.
- `make run` in sandbox mode keeps them too (`tasksync-sandbox-<logical id>`), with the
  simulators' state, which a clean stop saves to `.local/sandbox.pickle` and the next start
  takes back (the file is removed as it is read). A run that is killed saves nothing, so the
  next start begins again from the sample data, with the sandbox tables emptied to match.
  In-process stacks (the tests) keep nothing: in memory, under a name unique to the run.
- SQS and Secrets Manager (moto) are rebuilt from nothing at every start; what was queued, or sent
  while the stack was down, comes back from Close's event log at the first reconcile.
- `make run FRESH=1` (`--fresh`) empties the current mode's kept tables (and drops the saved
  sandbox state) before the start.
- Each child server (DynamoDB Local, moto) records its pid in `.local/pids/`; a start stops those
  a killed runner left behind before it launches its own.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEPT_TABLE_PREFIX = "tasksync-local"
KEPT_SANDBOX_TABLE_PREFIX = "tasksync-sandbox"
DATA_DIR_NAME = "dynamodb"
PID_DIR_NAME = "pids"
SANDBOX_FILE_NAME = "sandbox.pickle"


@dataclass(frozen=True)
class Persistence:
    local_dir: Path
    keeps_tables: bool
    sandbox: bool = False

    @property
    def data_dir(self) -> Path:
        """DynamoDB Local's -dbPath when the tables are kept."""
        return self.local_dir / DATA_DIR_NAME

    @property
    def pid_dir(self) -> Path:
        return self.local_dir / PID_DIR_NAME

    @property
    def sandbox_path(self) -> Path:
        return self.local_dir / SANDBOX_FILE_NAME

    def table_prefix(self) -> str:
        """Fixed when the tables are kept (a restart finds them), unique to the run otherwise."""
        if not self.keeps_tables:
            return f"tasksync-{secrets.token_hex(3)}"
        return KEPT_SANDBOX_TABLE_PREFIX if self.sandbox else KEPT_TABLE_PREFIX

    def save_sandbox(self, state: dict[str, Any]) -> None:
        """What the simulators hold, at a clean stop; readable by this user only."""
        self.local_dir.mkdir(parents=True, exist_ok=True)
        partial = self.sandbox_path.with_name(f".{SANDBOX_FILE_NAME}.{os.getpid()}.tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            pickle.dump(state, handle)
        os.replace(partial, self.sandbox_path)

    def take_sandbox(self) -> dict[str, Any] | None:
        """The state the last clean stop saved, removed as it is read (see the module doc)."""
        try:
            with self.sandbox_path.open("rb") as handle:
                state = pickle.load(handle)  # noqa: S301 - our own file, see the import
        except FileNotFoundError:
            return None
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            state = None  # from an older layout: start from the sample data
        with contextlib.suppress(FileNotFoundError):
            self.sandbox_path.unlink()
        return state if isinstance(state, dict) else None

    def forget_sandbox(self) -> None:
        """`make run FRESH=1` in sandbox mode: the simulators start from the sample data. (The
        stack deletes this mode's kept tables itself once DynamoDB Local is up; the other mode's
        tables stay: a sandbox FRESH must never cost the real-API links.)"""
        self.sandbox_path.unlink(missing_ok=True)

    def describe(self) -> str:
        """For the banner: where the state lives and how to start clean."""
        if self.keeps_tables:
            return f"kept in {self.local_dir} across restarts (make run FRESH=1 starts clean)"
        return "in memory: a restart starts from the sample data"
