"""Where the receiver finds the key that signs a Close webhook delivery.

Close gives each webhook subscription its own `signature_key` (hex). In AWS the keys live in
one Secrets Manager secret holding a JSON object `{"<subscription_id>": "<signature_key>"}`,
written by `tasksync webhook register`. Locally, CLOSE_WEBHOOK_SIGNATURE_KEY is one key used
for any subscription. No key is ever logged or put in an error message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tasksync.dal.aws import aws_client
from tasksync.errors import SignatureKeyInvalid, SignatureKeysUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Powertools' cache time for the secret: a key added by `webhook register` is seen within this.
SECRET_MAX_AGE_SECONDS = 300
# An unknown subscription id triggers a fresh read of the secret (a key registered a moment
# ago), but at most this often, so that forged ids cannot make us hammer Secrets Manager.
UNKNOWN_ID_REFRESH_SECONDS = 60
# The receiver tries every key only for bodies with no readable subscription id; a deployment
# has one subscription, or a few during a key rotation.
MAX_CANDIDATE_KEYS = 10


# A subscription's `signature_key` as Close issues it: 32 bytes, hex-encoded
# (docs/upstream-apis.md, "Close webhook signatures").
_SIGNATURE_KEY = re.compile(r"[0-9a-fA-F]{64}")


def is_signature_key(text: str) -> bool:
    """Whether ``text`` has the shape of a Close `signature_key` (64 hex characters)."""
    return _SIGNATURE_KEY.fullmatch(text) is not None


class SingleSignatureKey:
    """One key for any subscription: CLOSE_WEBHOOK_SIGNATURE_KEY in local runs."""

    def __init__(self, key_hex: str) -> None:
        if not is_signature_key(key_hex.strip()):
            raise SignatureKeyInvalid("CLOSE_WEBHOOK_SIGNATURE_KEY is not 64 hex characters")
        self._key = key_hex.strip()

    def key_for(self, subscription_id: str) -> str | None:
        return self._key

    def all_keys(self) -> list[str]:
        return [self._key]

    def __repr__(self) -> str:
        return "SingleSignatureKey(<redacted>)"


class SignatureKeyMap:
    """A fixed map of subscription id to key (tests, and the parsed form of the secret)."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    def key_for(self, subscription_id: str) -> str | None:
        return self._keys.get(subscription_id)

    def all_keys(self) -> list[str]:
        return list(self._keys.values())[:MAX_CANDIDATE_KEYS]

    def subscription_ids(self) -> list[str]:
        return list(self._keys)

    def __repr__(self) -> str:
        return f"SignatureKeyMap(subscriptions={sorted(self._keys)})"


def parse_key_map(value: Any) -> SignatureKeyMap:
    """Validate the decoded secret: a JSON object of subscription id to a 64-hex-character key.

    A key of any other shape (pasted with quotes or `0x`, cut short) could never verify a
    delivery: every real one would get a 401 until Close pauses the subscription. So it is a
    configuration error, raised for the whole secret.
    """
    if not isinstance(value, dict):
        raise SignatureKeysUnavailable("the signature-keys secret is not a JSON object")
    keys: dict[str, str] = {}
    for subscription_id, key in value.items():
        if not isinstance(subscription_id, str) or not isinstance(key, str) or not key.strip():
            # Name the subscription, never the value.
            raise SignatureKeysUnavailable(f"the signature key of {subscription_id!s:.64} is not a non-empty string")
        if not is_signature_key(key.strip()):
            raise SignatureKeyInvalid(f"the signature key of {subscription_id:.64} is not 64 hex characters")
        keys[subscription_id] = key.strip()
    return SignatureKeyMap(keys)


class SecretSignatureKeys:
    """Keys from the SIGNATURE_KEYS_SECRET_ARN secret, through Powertools Parameters (cached)."""

    def __init__(
        self,
        secret_id: str,
        *,
        secrets_client: SecretsManagerClient | None = None,
        max_age_seconds: int = SECRET_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here: only Lambda (and integration tests) read keys from Secrets Manager, and
        # the Parameters utility pulls in boto3 at import time.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415

        self._secret_id = secret_id
        # Never Powertools' own client: botocore's 60 s timeouts would outlast the function's.
        self._provider = SecretsProvider(boto3_client=secrets_client or aws_client("secretsmanager"))
        self._max_age = max_age_seconds
        self._clock = clock
        self._last_forced = -float(UNKNOWN_ID_REFRESH_SECONDS)

    def _load(self, *, force: bool = False) -> SignatureKeyMap:
        from aws_lambda_powertools.utilities.parameters.exceptions import (  # noqa: PLC0415
            GetParameterError,
            TransformParameterError,
        )

        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age, transform="json", force_fetch=force)
        except (GetParameterError, TransformParameterError) as exc:
            # Powertools' message names the secret and the AWS error, not the secret's value.
            raise SignatureKeysUnavailable(f"could not read the signature-keys secret: {type(exc).__name__}") from exc
        return parse_key_map(value)

    def key_for(self, subscription_id: str) -> str | None:
        key = self._load().key_for(subscription_id)
        if key is None and self._clock() - self._last_forced >= UNKNOWN_ID_REFRESH_SECONDS:
            self._last_forced = self._clock()
            key = self._load(force=True).key_for(subscription_id)
        return key

    def all_keys(self) -> list[str]:
        return self._load().all_keys()

    def subscription_ids(self) -> list[str]:
        return self._load().subscription_ids()
