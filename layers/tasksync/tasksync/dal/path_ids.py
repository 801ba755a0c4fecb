"""Ids that go into an API's URL path, checked against their documented shapes first.

An id comes from a webhook body, an API answer, a stored link or the CLI's command line. Put
into a path unchecked, `../` or an encoded slash could point a call at another endpoint with our
key. Close ids are a type prefix, `_` and letters/digits (`lead_…`, `user_…`, `ev_…`, `whsub_…`;
tasks `task_…`, or another prefix for other task types); ChartMogul task ids are UUIDs
(docs/upstream-apis.md, "Ids in URL paths"). Anything else is InvalidInput, before any request.
"""

from __future__ import annotations

import re

from tasksync.errors import InvalidInput

_CLOSE_PREFIX = re.compile(r"[a-z]{1,16}")
_CLOSE_ID_BODY = re.compile(r"[A-Za-z0-9]{1,128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def close_id(prefix: str | None, value: object, field: str) -> str:
    """``value`` when it is a Close id of type ``prefix`` (e.g. "lead"), else InvalidInput.

    ``prefix=None`` accepts any type prefix: tasks other than lead tasks carry other prefixes
    (`noti_…` in Close's own examples), so a task id is checked for its shape only.
    """
    if isinstance(value, str):
        kind, separator, body = value.partition("_")
        known = kind == prefix if prefix is not None else _CLOSE_PREFIX.fullmatch(kind) is not None
        if known and separator and _CLOSE_ID_BODY.fullmatch(body):
            return value
    raise InvalidInput(field, f"must be a Close id like {prefix or 'task'}_… (letters and digits)")


def uuid_id(value: object, field: str) -> str:
    """``value`` when it is a UUID (ChartMogul's task ids), else InvalidInput."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value
    raise InvalidInput(field, "must be a UUID")


def safe_path(path: str) -> str:
    """The last guard before a request: no `.`/`..` segment and no encoded slash or dot in a path."""
    lowered = path.lower()
    if any(segment in {".", ".."} for segment in path.split("/")) or "%2f" in lowered or "%2e" in lowered:
        raise InvalidInput("path", "must not contain dot segments or encoded slashes")
    return path
