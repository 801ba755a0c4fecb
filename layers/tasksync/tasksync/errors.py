"""Typed errors shared by every layer of tasksync.

The split that matters to callers is *retryable* versus *permanent*: the worker turns a
retryable error into an SQS retry with backoff, and a permanent one into a parked task. No
error message ever carries a credential: clients build messages from the method, the path
(without query string secrets) and the response body only.
"""

from __future__ import annotations

from tasksync.upstream_text import upstream_text


class TaskSyncError(Exception):
    """Base class for every error raised by tasksync."""


class InvalidInput(TaskSyncError):
    """Input (a webhook body, an API answer, configuration) failed validation.

    ``field`` is the dotted path of the first offending field, so an operator can see at a
    glance what was wrong without the payload being logged.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"invalid {field}: {message}")


class ApiError(TaskSyncError):
    """An HTTP API answered with an error, or could not be reached."""

    def __init__(
        self,
        api: str,
        method: str,
        path: str,
        status: int | None,
        body: str = "",
        message: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.api = api
        self.method = method
        self.path = path
        self.status = status
        # The body, truncated: ChartMogul has at least four error shapes, so callers that need
        # details search this text rather than parse one assumed structure. Escape sequences,
        # control characters and key-like fields are gone before it is kept (upstream_text).
        self.body = upstream_text(body[:4000])[:2000]
        # The server's advised wait in seconds, when it sent one (a 429's Retry-After): only
        # retryable errors are given one, and the queue waits at least that long.
        self.retry_after = retry_after
        detail = message or (f"HTTP {status}" if status is not None else "no response")
        super().__init__(f"{api} {method} {path}: {detail}" + (f": {self.body[:300]}" if self.body else ""))


class RetryableApiError(ApiError):
    """429, 5xx, timeouts and connection failures: the same call may succeed later."""


class RateLimited(RetryableApiError):
    """429 Too Many Requests; ``retry_after`` is the server's advised wait in seconds."""


class OutcomeUnknown(RetryableApiError):
    """A write whose outcome is unknown: a timeout or a 5xx after the request was sent.

    For a POST this means the object may exist now, so the caller must look for it before
    writing again (ChartMogul tasks have no idempotency key).
    """


class PermanentApiError(ApiError):
    """Any 4xx other than 429 (and 404 where the caller asked for it to be an error)."""


class NotFound(PermanentApiError):
    """404: the object does not exist (or no longer does)."""


class AssigneeRejected(PermanentApiError):
    """The API refused the request because of the assignee (the client reads its answer)."""


class CustomerUnknown(PermanentApiError):
    """The API refused the request because of the customer: it may have been deleted."""


class LeaseHeld(TaskSyncError):
    """Another worker holds the creating lease on this task; retry after it expires."""

    def __init__(self, close_task_id: str, seconds_left: float) -> None:
        self.close_task_id = close_task_id
        self.seconds_left = seconds_left
        super().__init__(f"task {close_task_id} is being created by another worker ({seconds_left:.0f}s left)")


class Settling(TaskSyncError):
    """The task was written to ChartMogul moments ago: this change waits until SETTLE_SECONDS
    after that write, so that the rep's next edits go out with it in one call."""

    def __init__(self, close_task_id: str, seconds_left: float) -> None:
        self.close_task_id = close_task_id
        self.seconds_left = seconds_left
        super().__init__(f"task {close_task_id} was written {seconds_left:.0f}s short of its settle time ago")


class SignatureKeysUnavailable(TaskSyncError):
    """The webhook signature keys could not be read (Secrets Manager failed, or the secret is
    not a JSON map)."""


class SignatureKeyInvalid(SignatureKeysUnavailable):
    """A signature key is not what Close issues (64 hex characters): a configuration error."""


class ConcurrentUpdate(TaskSyncError):
    """A conditional DynamoDB write lost a race; the event should be retried."""
