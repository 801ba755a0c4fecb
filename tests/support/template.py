"""The template helpers live in `tasksync_dev.local.template` and `.tables` (the local runner uses them too).

Re-exported here so that tests keep importing them from one familiar place.
"""

from __future__ import annotations

from pathlib import Path

from tasksync_dev.local.tables import create_tables
from tasksync_dev.local.template import (
    TEMPLATE_PATH,
    FunctionDefinition,
    QueueDefinition,
    RedriveDefinition,
    SecretDefinition,
    TableDefinition,
    cloudformation_loader,
    create_queues,
    create_secrets,
    function_definitions,
    load_template,
    local_queue_name,
    local_secret_name,
    local_table_name,
    queue_definitions,
    secret_definitions,
    table_definitions,
)

# The checkout the tests run from (functions/, events/, .tools/ are found from here).
REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "REPO_ROOT",
    "TEMPLATE_PATH",
    "FunctionDefinition",
    "QueueDefinition",
    "RedriveDefinition",
    "SecretDefinition",
    "TableDefinition",
    "cloudformation_loader",
    "create_queues",
    "create_secrets",
    "create_tables",
    "function_definitions",
    "load_template",
    "local_queue_name",
    "local_secret_name",
    "local_table_name",
    "queue_definitions",
    "secret_definitions",
    "table_definitions",
]
