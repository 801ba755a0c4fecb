"""The stack's signature-keys secret, as the operator edits it.

It holds a JSON object `{"<subscription_id>": "<signature_key>"}` that the receiver reads
(`tasksync.dal.signature_keys`). Writes are read-merge-write with PutSecretValue: keys of other
subscriptions are kept, so a key rotation can run two subscriptions side by side. Two operators
editing at the same instant could lose one write; registering a webhook is rare enough that we
accept that rather than add a lock. No key ever leaves this module except into the secret.
Each write also stores the ids alone in the StateTable (tasksync.dal.subscriptions), where the
reconciler reads them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from tasksync.dal.signature_keys import parse_key_map

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from tasksync.dal.subscriptions import SubscriptionDirectory


class SignatureKeySecret:
    def __init__(
        self, client: SecretsManagerClient, secret_id: str, directory: SubscriptionDirectory | None = None
    ) -> None:
        self._client = client
        self.secret_id = secret_id
        # The ids alone, for the reconciler, which holds no grant on this secret.
        self._directory = directory

    def _read(self) -> dict[str, str]:
        try:
            value = self._client.get_secret_value(SecretId=self.secret_id).get("SecretString") or "{}"
        except ClientError as exc:
            # A secret created without a value has no AWSCURRENT version yet: no keys.
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException" and "version" in str(
                exc.response.get("Error", {}).get("Message", "")
            ):
                return {}
            raise
        try:
            decoded = json.loads(value) if value.strip() else {}
        except ValueError:
            decoded = None  # parse_key_map names the problem without echoing the value
        keys = parse_key_map(decoded)
        return {subscription_id: keys.key_for(subscription_id) or "" for subscription_id in keys.subscription_ids()}

    def _write(self, keys: dict[str, str]) -> None:
        self._client.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(keys, sort_keys=True))
        self.mirror_ids(list(keys))

    def mirror_ids(self, subscription_ids: list[str] | None = None) -> None:
        """Write the secret's subscription ids (no keys) where the reconciler reads them."""
        if self._directory is not None:
            self._directory.replace(self.subscription_ids() if subscription_ids is None else subscription_ids)

    def subscription_ids(self) -> list[str]:
        return sorted(self._read())

    def add(self, subscription_id: str, signature_key: str) -> None:
        keys = self._read()
        keys[subscription_id] = signature_key
        self._write(keys)

    def remove(self, subscription_id: str) -> bool:
        """Drop a subscription's key; False when the secret did not hold it."""
        keys = self._read()
        if keys.pop(subscription_id, None) is None:
            return False
        self._write(keys)
        return True
