"""The data resources declared in template.yaml, read and created for local use.

The local runner (`make run`) and the tests build their tables, queues and secrets from the
template itself, so a change to a key, an index or a queue setting there is what every local run
and every test runs against: nothing here repeats a name or a schema by hand.

Reading the template and creating queues and secrets live here; tables, which a local run keeps
across restarts, are created by tasksync_dev.local.tables.

PyYAML is a dev dependency only, imported inside the functions that read the template.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from tasksync_dev.local.sqs_source import queue_arn

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


def _find_repo_root() -> Path:
    """The checkout holding template.yaml: above this file in a dev install, else the cwd."""
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if (candidate / "template.yaml").is_file():
            return candidate
    return Path.cwd()


REPO_ROOT = _find_repo_root()
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# CloudFormation SQS properties that are also CreateQueue attribute names, with the same meaning.
_SQS_ATTRIBUTE_PROPERTIES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
)


class TableDefinition(TypedDict):
    """One AWS::DynamoDB::Table: CreateTable keyword arguments (without TableName) and its TTL attribute."""

    create_table: dict[str, Any]
    ttl_attribute: str | None


class RedriveDefinition(TypedDict):
    dead_letter_queue: str  # logical id of the DLQ in the template
    max_receive_count: int


class QueueDefinition(TypedDict):
    """One AWS::SQS::Queue: its CloudFormation properties that are CreateQueue attributes, and its redrive."""

    fifo: bool
    attributes: dict[str, Any]  # property name -> value as written in the template (int, bool, str)
    redrive: RedriveDefinition | None


class FunctionDefinition(TypedDict):
    """One AWS::Serverless::Function: where its handler is and the limits Lambda gives it."""

    code_uri: str  # e.g. "functions/receiver/"
    handler: str  # e.g. "app.lambda_handler"
    memory_mb: int
    timeout_seconds: int


class SecretDefinition(TypedDict):
    description: str | None
    # A literal SecretString from the template, if any (normally absent: values are set out of band).
    secret_string: str | None


# --- YAML with CloudFormation short tags -------------------------------------------------------


@functools.cache
def cloudformation_loader() -> Any:
    """A safe YAML loader class that turns `!Ref x` into {"Ref": x}, `!Sub s` into {"Fn::Sub": s}, ...

    Built on first use so that importing this module never needs PyYAML.
    """
    import yaml  # type: ignore[import-untyped]  # noqa: PLC0415 - dev-only dependency, see the module doc

    # libyaml's parser when PyYAML has it (its wheels do): the same documents, parsed about ten
    # times faster, which the many template checks of the test suite feel.
    safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class CloudFormationLoader(safe_loader):  # type: ignore[misc,valid-type]
        pass

    def construct_short_tag(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:  # pragma: no cover - PyYAML has only the three node kinds
            raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}", node.start_mark)
        if tag_suffix == "Ref":
            return {"Ref": value}
        if tag_suffix == "Condition":
            return {"Condition": value}
        if tag_suffix == "GetAtt" and isinstance(value, str):
            # The short form "Resource.Attribute" splits at the first dot only (attributes may contain dots).
            resource, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [resource, attribute]}
        return {f"Fn::{tag_suffix}": value}

    CloudFormationLoader.add_multi_constructor("!", construct_short_tag)
    return CloudFormationLoader


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data; short tags become their long (`Fn::*`) forms."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run from a tasksync checkout (the local runner reads template.yaml)"
        )
    with path.open(encoding="utf-8") as handle:
        # What yaml.load does, with our safe loader subclass (no arbitrary objects), built directly.
        loader = cloudformation_loader()(handle)
        try:
            loaded = loader.get_single_data()
        finally:
            loader.dispose()
    if not isinstance(loaded, dict) or not isinstance(loaded.get("Resources"), dict):
        raise ValueError(f"{path} is not a CloudFormation template (no Resources mapping)")
    return loaded


def _resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: dict(resource.get("Properties") or {})
        for logical_id, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


def _referenced_logical_id(value: Any) -> str:
    """The resource a `!GetAtt X.Arn` or `!Ref X` points at."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).partition(".")[0])
        if "Ref" in value:
            return str(value["Ref"])
    raise ValueError(f"expected a !GetAtt or !Ref to a resource in the template, got {value!r}")


# --- definitions ---------------------------------------------------------------------------------


def table_definitions(template: Mapping[str, Any] | None = None) -> dict[str, TableDefinition]:
    """Every AWS::DynamoDB::Table, keyed by logical id."""
    template = template if template is not None else load_template()
    tables: dict[str, TableDefinition] = {}
    for logical_id, props in _resources_of_type(template, "AWS::DynamoDB::Table").items():
        create: dict[str, Any] = {
            "KeySchema": copy.deepcopy(props["KeySchema"]),
            "AttributeDefinitions": copy.deepcopy(props["AttributeDefinitions"]),
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            create["GlobalSecondaryIndexes"] = copy.deepcopy(props["GlobalSecondaryIndexes"])
        if props.get("LocalSecondaryIndexes"):
            create["LocalSecondaryIndexes"] = copy.deepcopy(props["LocalSecondaryIndexes"])
        if create["BillingMode"] == "PROVISIONED" and "ProvisionedThroughput" in props:
            create["ProvisionedThroughput"] = copy.deepcopy(props["ProvisionedThroughput"])
        ttl = props.get("TimeToLiveSpecification") or {}
        tables[logical_id] = {
            "create_table": create,
            "ttl_attribute": ttl.get("AttributeName") if ttl.get("Enabled") else None,
        }
    return tables


def queue_definitions(template: Mapping[str, Any] | None = None) -> dict[str, QueueDefinition]:
    """Every AWS::SQS::Queue, keyed by logical id."""
    template = template if template is not None else load_template()
    queues: dict[str, QueueDefinition] = {}
    for logical_id, props in _resources_of_type(template, "AWS::SQS::Queue").items():
        redrive_props = props.get("RedrivePolicy")
        redrive: RedriveDefinition | None = None
        if redrive_props:
            redrive = {
                "dead_letter_queue": _referenced_logical_id(redrive_props["deadLetterTargetArn"]),
                "max_receive_count": int(redrive_props["maxReceiveCount"]),
            }
        queues[logical_id] = {
            "fifo": bool(props.get("FifoQueue", False)),
            "attributes": {name: props[name] for name in _SQS_ATTRIBUTE_PROPERTIES if name in props},
            "redrive": redrive,
        }
    return queues


def secret_definitions(template: Mapping[str, Any] | None = None) -> dict[str, SecretDefinition]:
    """Every AWS::SecretsManager::Secret, keyed by logical id (values are never in the template)."""
    template = template if template is not None else load_template()
    found: dict[str, SecretDefinition] = {}
    for logical_id, props in _resources_of_type(template, "AWS::SecretsManager::Secret").items():
        literal = props.get("SecretString")
        description = props.get("Description")
        found[logical_id] = {
            "description": description if isinstance(description, str) else None,
            "secret_string": literal if isinstance(literal, str) else None,
        }
    return found


def function_definitions(template: Mapping[str, Any] | None = None) -> dict[str, FunctionDefinition]:
    """Every AWS::Serverless::Function with a local CodeUri, keyed by logical id (Globals applied)."""
    template = template if template is not None else load_template()
    defaults = (template.get("Globals") or {}).get("Function") or {}
    found: dict[str, FunctionDefinition] = {}
    for logical_id, props in _resources_of_type(template, "AWS::Serverless::Function").items():
        code_uri = props.get("CodeUri", defaults.get("CodeUri"))
        handler = props.get("Handler", defaults.get("Handler"))
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            continue  # inline or S3 code: nothing to run locally
        found[logical_id] = {
            "code_uri": code_uri,
            "handler": handler,
            # SAM's documented defaults when neither the function nor Globals sets them.
            "memory_mb": int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            "timeout_seconds": int(props.get("Timeout", defaults.get("Timeout", 3))),
        }
    return found


def local_table_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}-{logical_id}"


def local_queue_name(prefix: str, logical_id: str, *, fifo: bool) -> str:
    # SQS requires the .fifo suffix on FIFO queue names.
    return f"{prefix}-{logical_id}" + (".fifo" if fifo else "")


def local_secret_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}/{logical_id}"


# --- creation (tables: tasksync_dev.local.tables) -------------------------------------------------


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def create_queues(sqs_client: SQSClient, prefix: str, template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Create every queue of the template (dead-letter queues first); return logical id -> queue URL."""
    definitions = queue_definitions(template)
    urls: dict[str, str] = {}

    def create(logical_id: str, chain: tuple[str, ...]) -> str:
        if logical_id in urls:
            return urls[logical_id]
        if logical_id in chain:
            raise ValueError(f"redrive cycle in the template: {' -> '.join((*chain, logical_id))}")
        if logical_id not in definitions:
            raise ValueError(f"queue {chain[-1]} redrives to {logical_id}, which is not a queue in the template")
        definition = definitions[logical_id]
        attributes = {name: _attribute_text(value) for name, value in definition["attributes"].items()}
        redrive = definition["redrive"]
        if redrive is not None:
            dlq_url = create(redrive["dead_letter_queue"], (*chain, logical_id))
            dlq_arn = queue_arn(sqs_client, dlq_url)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["max_receive_count"]}
            )
        name = local_queue_name(prefix, logical_id, fifo=definition["fifo"])
        urls[logical_id] = sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        return urls[logical_id]

    for logical_id in definitions:
        create(logical_id, ())
    return urls


def create_secrets(
    sm_client: SecretsManagerClient,
    prefix: str,
    values: Mapping[str, str],
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Create every secret of the template as f"{prefix}/{logical_id}"; return logical id -> ARN.

    The value is ``values[logical_id]``, else the template's literal SecretString, else a random
    token (what GenerateSecretString would give). A value for a secret the template does not
    declare is an error: it is almost certainly a typo of a logical id.
    """
    definitions = secret_definitions(template)
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        raise ValueError(f"no AWS::SecretsManager::Secret with logical id {', '.join(unknown)} in the template")
    arns: dict[str, str] = {}
    for logical_id, definition in definitions.items():
        value = values.get(logical_id) or definition["secret_string"] or secrets.token_urlsafe(32)
        created = sm_client.create_secret(
            Name=local_secret_name(prefix, logical_id),
            Description=definition["description"] or logical_id,
            SecretString=value,
        )
        arns[logical_id] = created["ARN"]
    return arns
