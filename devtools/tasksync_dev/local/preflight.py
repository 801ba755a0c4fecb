"""Checks made before the local stack starts, each failing with one line.

With the real APIs, each key is tried with one cheap read (Close's `GET /me/`, ChartMogul's
`GET /v1/ping`): a wrong key otherwise shows up as a traceback from the reconciler every 30
seconds. The settings themselves (TASK_TYPES against Close's task types, ...) are checked by
SyncSettings when the stack is made.
"""

from __future__ import annotations

import requests

from tasksync.config import SyncSettings

TIMEOUT = (3.05, 10.0)


class PreflightFailed(RuntimeError):
    """One line that says which check failed and what to do."""


def _try_key(api: str, variable: str, url: str, key: str) -> None:
    try:
        answer = requests.get(url, auth=(key, ""), timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise PreflightFailed(
            f"cannot reach {api} at {url}: {type(exc).__name__} (check {api.upper()}_API_URL)"
        ) from None
    if answer.status_code in (401, 403):
        raise PreflightFailed(f"{api} refused {variable} ({answer.status_code} from GET {url}): check the key")
    if not answer.ok:
        raise PreflightFailed(f"{api} answered {answer.status_code} to GET {url} when checking {variable}")


def check_api_keys(settings: SyncSettings) -> None:
    """One cheap authenticated read per API; raise PreflightFailed on the first that fails."""
    if settings.close_api_key is not None:
        _try_key("Close", "CLOSE_API_KEY", f"{settings.close_api_url}/me/", settings.close_api_key.get_secret_value())
    if settings.chartmogul_api_key is not None:
        _try_key(
            "ChartMogul",
            "CHARTMOGUL_API_KEY",
            f"{settings.chartmogul_api_url}/ping",
            settings.chartmogul_api_key.get_secret_value(),
        )
