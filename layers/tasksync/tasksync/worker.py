"""The worker's per-record logic: one SQS record carries one Close event to the engine.

The handler (functions/worker/app.py) stays thin: it hands the batch to `Worker.start_batch`,
which parses every message once and plans which records of one task are applied as one
(`tasksync.coalescing`), then feeds the records (tasksync.batch) to `Worker.process_record`.
Here we decide, per record:
- a malformed message goes straight to the DLQ with its reason (nothing is lost, and one bad
  message never blocks its task's queue group for days);
- the event is applied once per (event id, date_updated) thanks to Powertools idempotency; a
  record folded into a newer one of its run gets its own idempotency record and result
  (`coalesced`) without a ChartMogul call;
- a retryable failure pushes the record's visibility out by a capped exponential backoff with
  jitter (SQS has no per-message backoff of its own), then fails the record;
- permanent failures were already turned into parked tasks by the engine.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.serialization.custom_dict import CustomDictSerializer

from tasksync.coalescing import BatchPlan, ParsedRecord, Run
from tasksync.config import WorkerSettings
from tasksync.errors import ConcurrentUpdate, InvalidInput, LeaseHeld, RetryableApiError, Settling
from tasksync.logic.results import ApplyResult, Outcome
from tasksync.logic.sync import TaskSync
from tasksync.models.queue import QueuedEvent

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

    def settling(self, event_id: str, visibility: int) -> None: ...

    def rejected(self, message_id: str, reason: str) -> None: ...

    def failed(self, event_id: str, error: Exception) -> None: ...


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
    result: ApplyResult | None


class Worker:
    def __init__(
        self,
        *,
        settings: WorkerSettings,
        engine: TaskSync,
        sqs: SQSClient,
        dynamodb: DynamoDBClient,
        sink: OutcomeSink,
        rng: Callable[[], float] = random.random,
        batch_starts: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        # Told as each batch starts (the ChartMogul pacer: work resumes after the gap between batches).
        self.batch_starts = batch_starts
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
        # The stored result is the ApplyResult, serialised here and nowhere else.
        serializer = CustomDictSerializer(to_dict=asdict, from_dict=_result_from_dict)

        def apply_once(
            event: dict[str, Any], queued: QueuedEvent, settle: bool = False, current: bool = False
        ) -> ApplyResult:
            # ``event`` (the raw message) only keys the record; the engine gets the parsed model.
            return self.engine.apply(queued.event, settle=settle, current=current)

        def fold_once(event: dict[str, Any], into: ApplyResult) -> ApplyResult:
            return into

        # Keyed on the Close event id plus date_updated (Close consolidates rapid changes into
        # one event id), with a key_prefix so renaming this function never resets dedup. A
        # folded record shares the prefix: a repeat of it finds its record whichever way it went.
        options: dict[str, Any] = {
            "data_keyword_argument": "event",
            "config": self.idempotency_config,
            "persistence_store": persistence,
            "key_prefix": IDEMPOTENCY_KEY_PREFIX,
            "output_serializer": serializer,
        }
        self._apply_once: Callable[..., ApplyResult | Replayed] = idempotent_function(apply_once, **options)
        self._fold_once: Callable[..., ApplyResult | Replayed] = idempotent_function(fold_once, **options)
        self._plan = BatchPlan(())

    def register_lambda_context(self, context: Any) -> None:
        """Call first in every invocation: it bounds how long a crashed attempt blocks a retry."""
        self.idempotency_config.register_lambda_context(context)
        # Powertools marks a record in progress until the invocation that took it would time
        # out; this invocation's time (measured at its start) is an upper bound for any of them.
        self._in_progress_seconds = context.get_remaining_time_in_millis() / 1000

    def start_batch(self, records: Iterable[Mapping[str, Any]]) -> BatchPlan:
        """Call with the SQS event's ``Records`` before processing them: parses every message
        once, finds the records of one task that are applied as one, and reads the tasks'
        links ahead."""
        self._plan = BatchPlan.from_lambda_records(records)
        self.batch_starts()
        # One read for the links of every task of the batch instead of one per record.
        self.engine.read_ahead(self._plan.task_ids)
        return self._plan

    def process_record(self, record: SyncRecord, receive_count: int) -> RecordOutcome:
        """Apply one record. Raises (after setting the record's backoff) when it must be retried."""
        parsed = self._plan.records.get(record.message_id)
        if parsed is None or parsed.body != record.body:  # not planned: a record on its own
            parsed = ParsedRecord.parse(record.message_id, record.body)
        if parsed.queued is None:
            self._dead_letter(record, parsed.rejection or "unreadable")
            return RecordOutcome(None, None)
        queued = parsed.queued
        run = self._plan.run_of(record.message_id)
        # A change may wait for the task's settle window on a message's first delivery only, so
        # that it costs at most one of the message's deliveries (maxReceiveCount); a later
        # delivery (back from that wait) applies the task as Close has it now.
        first = receive_count <= 1
        mode = {"settle": first, "current": not first and self.settings.settle_seconds > 0}
        try:
            if run is None:
                result = self._apply_once(event=queued.raw_event, queued=queued, **mode)
            else:
                result = self._apply_run(run, parsed, mode)
        except Settling as exc:
            visibility = max(1, math.ceil(exc.seconds_left))
            self._delay(record, visibility)
            self.sink.settling(queued.event.id, visibility)
            raise
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
            self.sink.retrying(queued.event.id, exc, visibility)
            raise
        except Exception as exc:
            # Not a wait the worker planned (no backoff set): the record comes back after the
            # queue's visibility timeout and, after maxReceiveCount, goes to the DLQ. Say why now.
            self.sink.failed(queued.event.id, exc)
            raise
        replayed = isinstance(result, Replayed)
        applied = result.result if isinstance(result, Replayed) else result
        (self.sink.replayed if replayed else self.sink.applied)(applied, queued.event.id)
        return RecordOutcome(queued.event.id, applied)

    def _apply_run(self, run: Run, parsed: ParsedRecord, mode: dict[str, bool]) -> ApplyResult | Replayed:
        """The run's representative is applied at the turn of its first record; every member
        then gets its own idempotency record: the representative's result, or ``coalesced``."""
        representative = run.representative
        applied = self._plan.applied.get(representative.message_id)
        if applied is None:
            rep = representative.queued
            if rep is None:  # pragma: no cover - a run holds parsed records only
                raise InvalidInput("message.body", "a coalesced run holds an unreadable record")
            applied = self._apply_once(event=rep.raw_event, queued=rep, **mode)
            self._plan.applied[representative.message_id] = applied
        if parsed is representative:
            return applied
        base = applied.result if isinstance(applied, Replayed) else applied
        queued = parsed.queued
        if queued is None:  # pragma: no cover - a run holds parsed records only
            raise InvalidInput("message.body", "a coalesced run holds an unreadable record")
        rep_id = representative.queued.event.id if representative.queued else "?"
        folded = replace(
            base,
            outcome=Outcome.COALESCED,
            reason=f"applied as the newer event {rep_id} of the same batch",
            chartmogul_calls=0,
            close_calls=0,
        )
        return self._fold_once(event=queued.raw_event, into=folded)

    def _delay(self, record: SyncRecord, seconds: int) -> None:
        """Make the record visible again in ``seconds``, and with it the rest of its task's
        records in this batch: they go back unhandled, and would otherwise wait out the queue's
        whole visibility timeout, behind the record they must follow."""
        if self.settings.queue_url is None:
            return
        handles = [record.receipt_handle, *(r.receipt_handle for r in self._plan.later_in_group(record.message_id))]
        answer = self.sqs.change_message_visibility_batch(
            QueueUrl=self.settings.queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for n, handle in enumerate(handles[:10])
            ],
        )
        for failed in answer.get("Failed") or []:
            # Only late, not lost: the record comes back after the queue's visibility timeout.
            self.sink.retrying(record.message_id, RuntimeError(f"visibility not changed: {failed}"), seconds)

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


@dataclass(frozen=True)
class Replayed:
    """A result Powertools answered from a stored idempotency record: nothing was applied now."""

    result: ApplyResult


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this only when it answers from a stored record."""
    return Replayed(response) if isinstance(response, ApplyResult) else response


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
