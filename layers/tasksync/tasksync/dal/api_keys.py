"""The Close and ChartMogul API keys: from the environment locally, from Secrets Manager in Lambda.

In AWS the functions get only each secret's ARN and read the value at cold start; it is cached
for the life of the process. When the operator rotates a key (puts a new value in the secret),
the cached one starts failing with 401: `ApiKey.refresh` reads the secret again, at most once a
minute, so that a rotated key costs one failed call rather than a parked task per record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tasksync.dal.aws import aws_client
from tasksync.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic import SecretStr

    from tasksync.config import ChartMogulApiSettings, CloseApiSettings

# What template.yaml puts in the API-key secrets until the operator stores the real key.
PLACEHOLDER_SECRET = "REPLACE_ME"  # noqa: S105 - a placeholder, not a credential
# Powertools' cache time for a secret read at cold start.
SECRET_MAX_AGE_SECONDS = 300
# A 401 rereads the secret, but at most this often: a key that is simply wrong must not turn
# every record into a Secrets Manager call.
REFRESH_INTERVAL_SECONDS = 60.0

# (secret ARN, fresh) -> the secret's value; fresh skips every cache.
SecretReader = Callable[[str, bool], str]


class SecretsManagerReader:
    """Secret values through Powertools Parameters, on the short-timeout client of tasksync.dal.aws.

    Powertools' default provider builds its own client with botocore's 60 s timeouts; a hung
    Secrets Manager call would then outlast the worker's 30 s timeout.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._provider: Any = None

    def __call__(self, arn: str, fresh: bool = False) -> str:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415 - Lambda only

        client = aws_client("secretsmanager")
        if client is not self._client:  # new endpoint or region (tests, local runs)
            self._client, self._provider = client, SecretsProvider(boto3_client=client)
        return str(self._provider.get(arn, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=fresh))


read_secret = SecretsManagerReader()


class ApiKey:
    """One API key, read once and re-read on demand (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        value: SecretStr | None,
        secret_arn: str | None,
        reader: SecretReader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._value = value
        self._secret_arn = secret_arn
        self._reader = reader
        self._clock = clock
        self._last_refresh = -REFRESH_INTERVAL_SECONDS
        self._key: str | None = None

    def value(self) -> str:
        if self._key is None:
            self._key = self._read(fresh=False)
        return self._key

    def refresh(self) -> str | None:
        """The key read afresh from its secret, when it changed; None when there is nothing newer."""
        if self._value is not None or self._reader is None or not self._secret_arn:
            return None
        now = self._clock()
        if now - self._last_refresh < REFRESH_INTERVAL_SECONDS:
            return None
        self._last_refresh = now
        previous = self._key
        try:
            self._key = self._read(fresh=True)
        except Exception:  # a failed reread leaves the 401 as the record's error
            return None
        return self._key if self._key != previous else None

    def _read(self, *, fresh: bool) -> str:
        if self._value is not None:
            return str(self._value.get_secret_value())
        if self._secret_arn and self._reader is not None:
            secret = self._reader(self._secret_arn, fresh).strip()
            if secret and secret != PLACEHOLDER_SECRET:
                return secret
            raise InvalidInput(
                self.name, f"the secret {self._secret_arn} holds no API key yet (put it with `aws secretsmanager`)"
            )
        raise InvalidInput(self.name, "is not set (and no secret ARN is configured)")

    def __repr__(self) -> str:
        return f"ApiKey({self.name}, <redacted>)"


def close_api_key(settings: CloseApiSettings, reader: SecretReader | None = None) -> ApiKey:
    return ApiKey(
        "CLOSE_API_KEY", value=settings.close_api_key, secret_arn=settings.close_api_key_secret_arn, reader=reader
    )


def chartmogul_api_key(settings: ChartMogulApiSettings, reader: SecretReader | None = None) -> ApiKey:
    return ApiKey(
        "CHARTMOGUL_API_KEY",
        value=settings.chartmogul_api_key,
        secret_arn=settings.chartmogul_api_key_secret_arn,
        reader=reader,
    )
