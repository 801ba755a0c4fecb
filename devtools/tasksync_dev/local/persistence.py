"""What a local run keeps in `.local/` between starts, and what a new start cleans up first.

- With the real APIs (and DynamoDB Local), the tables live in `.local/dynamodb/` under fixed names
  (`tasksync-local-<logical id>`): the links, checkpoints, customer cache and idempotency records
  survive a restart, so the first reconcile after it finds the events already applied and makes
  no ChartMogul write. Against a customer's real ChartMogul, a lost link is a duplicate task.
- In sandbox mode the simulators start from their sample data each time, so the tables start
  empty too: in memory, under a name unique to the run.
- SQS and Secrets Manager (moto) are rebuilt from nothing at every start; what was queued, or sent
  while the stack was down, comes back from Close's event log at the first reconcile.
- `make run FRESH=1` (`--fresh`) deletes the kept tables before the start.
- Each child server (DynamoDB Local, moto) records its pid in `.local/pids/`; a start stops those
  a killed runner left behind before it launches its own.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

KEPT_TABLE_PREFIX = "tasksync-local"
DATA_DIR_NAME = "dynamodb"
PID_DIR_NAME = "pids"


@dataclass(frozen=True)
class Persistence:
    local_dir: Path
    keeps_tables: bool

    @property
    def data_dir(self) -> Path:
        """DynamoDB Local's -dbPath when the tables are kept."""
        return self.local_dir / DATA_DIR_NAME

    @property
    def pid_dir(self) -> Path:
        return self.local_dir / PID_DIR_NAME

    def table_prefix(self) -> str:
        """Fixed when the tables are kept (a restart finds them), unique to the run otherwise."""
        return KEPT_TABLE_PREFIX if self.keeps_tables else f"tasksync-{secrets.token_hex(3)}"

    def forget(self) -> bool:
        """Delete the kept tables (`make run FRESH=1`); True when there were any."""
        if not self.data_dir.exists():
            return False
        shutil.rmtree(self.data_dir)
        return True

    def describe(self) -> str:
        """For the banner: where the state lives and how to start clean."""
        if self.keeps_tables:
            return f"kept in {self.data_dir} across restarts (make run FRESH=1 starts clean)"
        return "in memory: a restart starts from the sample data"
