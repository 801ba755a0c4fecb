"""The worker's per-record logic: one SQS record carries one Close event to the engine.

The handler (functions/worker/app.py) stays thin: it wires Powertools' batch processor to
`Worker.process_record`. Here we decide, per record:
- a malformed message goes straight to the DLQ with its reason (nothing is lost, and one bad
  message never blocks its task's queue group for days);
- the event is applied once per (event id, date_updated) thanks to Powertools idempotency;
- a retryable failure pushes the record's visibility out by a capped exponential backoff with
  jitter (SQS has no per-message backoff of its own), then fails the record;
- permanent failures were already turned into parked tasks by the engine.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from tasksync.config import SyncSettings
from tasksync.dal.queue import QueuedEvent
from tasksync.errors import ConcurrentUpdate, InvalidInput, LeaseHeld, RetryableApiError
from tasksync.logic.results import ApplyResult, Outcome
from tasksync.logic.sync import TaskSync

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

IDEMPOTENCY_KEY_PREFIX = "tasksync-event"
# What makes an event unique: Close consolidates rapid changes into one event id, bumping its
# date_updated. The CLI's replay recomputes the same key to delete a record.
IDEMPOTENCY_EVENT_KEY = "[id, date_updated]"
# Close can repeat an event for 72 hours; keep the idempotency record a little longer.
IDEMPOTENCY_SECONDS = 4 * 86400
# Set on a result that came from the idempotency store (a repeated delivery), never stored.
REPLAYED_KEY = "_replayed"
RETRYABLE = (RetryableApiError, LeaseHeld, ConcurrentUpdate, IdempotencyAlreadyInProgressError)


class SyncRecord(Protocol):
    """The parts of an SQS record we use (Powertools' SQSRecord has them)."""

    @property
    def body(self) -> str: ...

    @property
    def receipt_handle(self) -> str: ...

    @property
    def message_id(self) -> str: ...


class OutcomeSink(Protocol):
    """Where results go: Powertools Metrics + Logger in Lambda, a log line locally."""

    def applied(self, result: ApplyResult, event_id: str) -> None: ...

    def replayed(self, result: ApplyResult, event_id: str) -> None: ...

    def retrying(self, event_id: str, error: Exception, visibility: int) -> None: ...

    def rejected(self, message_id: str, reason: str) -> None: ...


# SQS's longest visibility timeout: no retry can be put off for longer.
MAX_VISIBILITY_SECONDS = 43200


def backoff_seconds(
    receive_count: int,
    error: Exception,
    *,
    base: int,
    cap: int,
    in_progress_seconds: float = 0.0,
    rng: Callable[[], float] = random.random,
) -> int:
    """When SQS should deliver the record again: capped exponential backoff with jitter, from
    how often SQS has delivered it, but never sooner than a wait the error tells us.

    A held create lease, an idempotency record still in progress (a crashed attempt's, which
    expires at most `in_progress_seconds`, one invocation's time, after it was taken) and a
    Retry-After are known waits, not guesses: RETRY_MAX_SECONDS caps only the guess. Retrying
    before a known wait is over cannot succeed and spends one of the record's deliveries
    (maxReceiveCount), so short retry settings would otherwise send healthy events to the DLQ.
    """
    attempt = max(1, receive_count)
    ceiling = min(cap, base * 2 ** min(attempt - 1, 20))
    guess = ceiling / 2 + rng() * ceiling / 2  # "equal jitter": never less than half the step
    known = 0.0
    if isinstance(error, LeaseHeld):
        known = error.seconds_left + 1
    elif isinstance(error, IdempotencyAlreadyInProgressError):
        known = in_progress_seconds + 1 if in_progress_seconds > 0 else 0.0
    elif isinstance(error, RetryableApiError) and error.retry_after:
        known = error.retry_after
    return int(min(MAX_VISIBILITY_SECONDS, max(0, round(max(guess, known)))))


@dataclass(frozen=True)
class RecordOutcome:
    event_id: str | None
    result: dict[str, Any] | None


class Worker:
    def __init__(
        self,
        *,
        settings: SyncSettings,
        engine: TaskSync,
        sqs: SQSClient,
        dynamodb: DynamoDBClient,
        sink: OutcomeSink,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sqs = sqs
        self.sink = sink
        self.rng = rng
        self._in_progress_seconds = 0.0  # until an invocation registers its context
        # One persistence layer per config (Powertools pitfall: configure() runs once).
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath=IDEMPOTENCY_EVENT_KEY,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_SECONDS,
            response_hook=_mark_replayed,
        )
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)

        def apply_once(event: dict[str, Any]) -> dict[str, Any]:
            queued = QueuedEvent.from_raw(event)
            return asdict(self.engine.apply(queued.event))

        # Keyed on the Close event id plus date_updated (Close consolidates rapid changes into
        # one event id), with a key_prefix so renaming this function never resets dedup.
        self._apply_once: Callable[..., dict[str, Any]] = idempotent_function(
            apply_once,
            data_keyword_argument="event",
            config=self.idempotency_config,
            persistence_store=persistence,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )

    def register_lambda_context(self, context: Any) -> None:
        """Call first in every invocation: it bounds how long a crashed attempt blocks a retry."""
        self.idempotency_config.register_lambda_context(context)
        # Powertools marks a record in progress until the invocation that took it would time
        # out; this invocation's time (measured at its start) is an upper bound for any of them.
        self._in_progress_seconds = context.get_remaining_time_in_millis() / 1000

    def process_record(self, record: SyncRecord, receive_count: int) -> RecordOutcome:
        """Apply one record. Raises (after setting the record's backoff) when it must be retried."""
        try:
            queued = QueuedEvent.from_message_body(record.body)
        except InvalidInput as exc:
            self._dead_letter(record, str(exc))
            return RecordOutcome(None, None)
        event_id = queued.event.id
        try:
            result = self._apply_once(event=dict(queued.raw_event))
        except RETRYABLE as exc:
            visibility = backoff_seconds(
                receive_count,
                exc,
                base=self.settings.retry_base_seconds,
                cap=self.settings.retry_max_seconds,
                in_progress_seconds=self._in_progress_seconds,
                rng=self.rng,
            )
            self._delay(record, visibility)
            self.sink.retrying(event_id, exc, visibility)
            raise
        replayed = bool(result.pop(REPLAYED_KEY, False))
        (self.sink.replayed if replayed else self.sink.applied)(_result_from_dict(result), event_id)
        return RecordOutcome(event_id, result)

    def _delay(self, record: SyncRecord, seconds: int) -> None:
        if self.settings.queue_url is None:
            return
        self.sqs.change_message_visibility(
            QueueUrl=self.settings.queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
        )

    def _dead_letter(self, record: SyncRecord, reason: str) -> None:
        """Move a message the worker can never process to the DLQ, with the reason attached."""
        self.sink.rejected(record.message_id, reason)
        if self.settings.dlq_url is None:
            raise InvalidInput("DLQ_URL", f"is not set; cannot park unreadable message {record.message_id}")
        self.sqs.send_message(
            QueueUrl=self.settings.dlq_url,
            MessageBody=record.body,
            MessageGroupId="unreadable",
            MessageDeduplicationId=record.message_id,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this only when it answers from a stored record: nothing was applied now."""
    return {**response, REPLAYED_KEY: True} if isinstance(response, dict) else response


def _result_from_dict(data: dict[str, Any]) -> ApplyResult:
    return ApplyResult(**{**data, "outcome": Outcome(data["outcome"])})


def describe(result: ApplyResult) -> str:
    """One log line per applied event (local runner and CloudWatch alike)."""
    return json.dumps(
        {
            "close_task": result.close_task_id,
            "action": result.outcome.value,
            "chartmogul_task": result.chartmogul_task_uuid,
            "reason": result.reason,
            "calls": {"chartmogul": result.chartmogul_calls, "close": result.close_calls},
        }
    )
