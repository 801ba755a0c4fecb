"""Shared parsing helpers: UTC timestamps, Close task dates, and typed validation errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from tasksync.errors import InvalidInput


def _as_utc(value: datetime) -> datetime:
    # Close event timestamps carry no offset ("2025-02-28T19:20:45.507000"); they are UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Year 1 or 9999 with an offset leaves the calendar in UTC. A ValueError is what
        # pydantic turns into a validation error, and so into InvalidInput (parse_model).
        raise ValueError("is outside the years 1-9999 once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _parse_task_date(value: Any) -> Any:
    """A Close task `date` is either date-only ("2015-01-05") or a datetime with an offset."""
    if value is None or isinstance(value, (date, datetime)):
        if isinstance(value, datetime):
            return _as_utc(value)
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date or a datetime string")
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return _as_utc(parsed)


TaskDate = Annotated[date | datetime | None, BeforeValidator(_parse_task_date)]


def format_utc(value: datetime) -> str:
    """Canonical UTC ISO form with microseconds, so that strings compare in time order."""
    return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_model[ModelT: BaseModel](model: type[ModelT], data: Any, where: str) -> ModelT:
    """Validate ``data`` as ``model``; on failure raise InvalidInput naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}.{path}" if path else where, first["msg"]) from None
