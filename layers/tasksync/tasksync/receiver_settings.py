"""The receiver's settings: the few variables it reads, checked without pydantic.

`tasksync.config.SyncSettings` is a pydantic model, and importing pydantic would cost the
receiver's cold start more than all its own work. The rules and the error wording are the
same: a blank value is unset, and an error names the variable, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tasksync.dal.signature_keys import is_signature_key
from tasksync.errors import InvalidInput
from tasksync.logic.signature import MIN_TOLERANCE_SECONDS

DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
# Every variable the receiver reads (the local runner passes these through, with SyncSettings').
VARIABLES = frozenset(
    {"QUEUE_URL", "CLOSE_WEBHOOK_SIGNATURE_KEY", "SIGNATURE_KEYS_SECRET_ARN", "SIGNATURE_TOLERANCE_SECONDS"}
)


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = environ.get(name)
    if text is None:
        return default
    # A plain decimal integer (pydantic's "300.0" and "1_000" are refused too, a stricter reading).
    digits = text.strip()
    unsigned = digits[1:] if digits[:1] in "+-" else digits
    if not (unsigned.isascii() and unsigned.isdigit()):
        raise InvalidInput(name, "expected a whole number")
    value = int(digits)
    if value < minimum:
        raise InvalidInput(name, f"expected a number of at least {minimum}")
    return value


@dataclass(frozen=True)
class ReceiverSettings:
    """QUEUE_URL, the signature key(s) and SIGNATURE_TOLERANCE_SECONDS."""

    queue_url: str
    # Locally: one hex key for every subscription. In AWS: unset, the keys are in the secret.
    close_webhook_signature_key: str | None = field(default=None, repr=False)
    signature_keys_secret_arn: str | None = None
    signature_tolerance_seconds: int = DEFAULT_SIGNATURE_TOLERANCE_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ReceiverSettings:
        """Read and check the variables; raise InvalidInput naming the first bad one."""
        key = _text(environ, "CLOSE_WEBHOOK_SIGNATURE_KEY")
        secret_arn = _text(environ, "SIGNATURE_KEYS_SECRET_ARN")
        tolerance = _integer(
            environ,
            "SIGNATURE_TOLERANCE_SECONDS",
            DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
            MIN_TOLERANCE_SECONDS,
        )
        queue_url = _text(environ, "QUEUE_URL")
        if key is not None and not is_signature_key(key.strip()):
            raise InvalidInput("CLOSE_WEBHOOK_SIGNATURE_KEY", "expected a signature_key: 64 hex characters")
        if key is None and secret_arn is None:
            raise InvalidInput("SIGNATURE_KEYS_SECRET_ARN", "is not set (nor CLOSE_WEBHOOK_SIGNATURE_KEY)")
        if queue_url is None:
            raise InvalidInput("QUEUE_URL", "is not set")
        return cls(queue_url, key.strip() if key else None, secret_arn, tolerance)
