"""Print each function's IAM role as SAM would deploy it: `.venv-sam/bin/python sam_roles.py template.yaml`.

Runs in the SAM venv (samtranslator, the library behind `sam build`/CloudFormation's
AWS::Serverless transform), offline: the code locations are replaced by dummy S3 URIs and no
managed policy is looked up by name. Output: JSON {function logical id: {"managed": [ARN...],
"statements": [IAM statement...]}} with the policy templates (DynamoDBCrudPolicy, ...) expanded
and the intrinsic functions left as written. Stdlib plus samtranslator only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


class _NoManagedPolicyNames:
    """The template names managed policies by ARN only; nothing needs IAM's ListPolicies."""

    def load(self) -> dict[str, str]:
        return {}


def roles(template_path: Path) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(template_path.read_text())
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://offline/code.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    resources = transform(template, {}, _NoManagedPolicyNames())["Resources"]
    found: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = []
        for policy in role.get("Policies", []):
            body = policy["PolicyDocument"]["Statement"]
            statements += body if isinstance(body, list) else [body]
        found[logical_id] = {"managed": role.get("ManagedPolicyArns", []), "statements": statements}
    return found


if __name__ == "__main__":
    json.dump(roles(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
