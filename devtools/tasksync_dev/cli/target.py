"""Which stack a command acts on: its tables, queues and secrets, and where they are.

Two sources give the same `StackTarget`:

- a deployed stack (`--stack NAME`): the CloudFormation outputs of template.yaml;
- the local stack of `make run` (`--local`, or `--stack-file PATH`): the state file the local
  runner writes (`tasksync_dev.local.state`, ``$TASKSYNC_LOCAL_DIR/stack.json``), whose layout is
  documented there. We read its endpoints, tables/queues/secrets by template logical id, the
  simulators' URLs and sandbox keys, the receiver URL and the environment the app runs with.
  A local target is reached with dummy AWS credentials (DynamoDB Local and moto take any).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasksync_dev.cli.output import UsageError
from tasksync_dev.local.state import LocalStackNotRunning, process_alive, read_state

REQUIRED_OUTPUTS = {
    "state_table": "StateTableName",
    "idempotency_table": "IdempotencyTableName",
    "queue_url": "EventQueueUrl",
    "dlq_url": "EventDLQUrl",
}
OPTIONAL_OUTPUTS = {
    "signature_keys_secret_arn": "SignatureKeysSecretArn",
    "close_api_key_secret_arn": "CloseApiKeySecretArn",
    "chartmogul_api_key_secret_arn": "ChartMogulApiKeySecretArn",
    "webhook_url": "WebhookUrl",
}
# StackTarget field -> the logical id in template.yaml (the local state keys resources by it).
LOCAL_TABLES = {"state_table": "StateTable", "idempotency_table": "IdempotencyTable"}
LOCAL_QUEUES = {"queue_url": "EventQueue", "dlq_url": "EventDLQ"}
LOCAL_SECRETS = {
    "signature_keys_secret_arn": "SignatureKeysSecret",
    "close_api_key_secret_arn": "CloseApiKeySecret",
    "chartmogul_api_key_secret_arn": "ChartMogulApiKeySecret",
}


@dataclass(frozen=True)
class StackTarget:
    name: str
    region: str
    state_table: str
    idempotency_table: str
    queue_url: str
    dlq_url: str
    signature_keys_secret_arn: str | None = None
    close_api_key_secret_arn: str | None = None
    chartmogul_api_key_secret_arn: str | None = None
    webhook_url: str | None = None
    # Local stacks only: boto3 service name -> endpoint URL, the simulators' URLs and sandbox
    # Close key, and the environment the app runs with (laid over ours for SyncSettings).
    endpoints: Mapping[str, str] = field(default_factory=dict)
    close_api_url: str | None = None
    close_api_key: str | None = field(default=None, repr=False)
    chartmogul_api_url: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return bool(self.endpoints)

    @classmethod
    def from_outputs(cls, stack_name: str, region: str, outputs: Mapping[str, str]) -> StackTarget:
        """A deployed stack, from its CloudFormation outputs (OutputKey -> OutputValue)."""
        missing = [output for output in REQUIRED_OUTPUTS.values() if not outputs.get(output)]
        if missing:
            raise UsageError(f"stack {stack_name} has no output {', '.join(missing)}: is it a tasksync stack?")
        values: dict[str, Any] = {name: outputs[output] for name, output in REQUIRED_OUTPUTS.items()}
        values.update({name: outputs[output] for name, output in OPTIONAL_OUTPUTS.items() if outputs.get(output)})
        return cls(name=stack_name, region=region, **values)

    @classmethod
    def from_local_state(cls, path: Path) -> StackTarget:
        """The stack `make run` runs, from the state file it wrote at ``path``."""
        try:
            state = read_state(path)
        except LocalStackNotRunning as exc:
            raise UsageError(str(exc)) from None
        pid = state.get("pid")
        if isinstance(pid, int) and not process_alive(pid):
            raise UsageError(f"the local stack in {path} (pid {pid}) is not running any more: start it with `make run`")
        where = str(path)
        values: dict[str, Any] = {"name": f"local ({path})", "region": _text(state, "region", where)}
        for fields_by_id, section in ((LOCAL_TABLES, "tables"), (LOCAL_QUEUES, "queues"), (LOCAL_SECRETS, "secrets")):
            resources = _mapping(state, section, where)
            for name, logical_id in fields_by_id.items():
                if resources.get(logical_id):
                    values[name] = resources[logical_id]
                elif name in REQUIRED_OUTPUTS:
                    raise UsageError(f"{where} names no {section}.{logical_id}")
        values["endpoints"] = _mapping(state, "endpoints", where)
        values["environment"] = _mapping(state, "environment", where)
        close = _mapping(state, "close", where)
        values["close_api_url"] = close.get("api_url")
        values["close_api_key"] = close.get("api_key")
        values["chartmogul_api_url"] = _mapping(state, "chartmogul", where).get("api_url")
        values["webhook_url"] = state.get("receiver_url") if isinstance(state.get("receiver_url"), str) else None
        return cls(**values)


def _text(state: Mapping[str, Any], key: str, where: str) -> str:
    value = state.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key} must be a non-empty string")
    return value


def _mapping(state: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    """A section of strings (null values dropped: e.g. no api_key with real APIs)."""
    value = state.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be an object")
    return {name: item for name, item in value.items() if isinstance(item, str) and item}
