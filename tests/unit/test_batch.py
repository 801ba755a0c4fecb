"""tasksync.batch answers exactly as Powertools' FIFO processor did, for any batch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from hypothesis import given, settings
from hypothesis import strategies as st

from tasksync.batch import SqsRecord, process_fifo_batch

# A batch: each record is (message group or None, whether its handler fails).
batches = st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.booleans()), max_size=10)


def _event(batch: list[tuple[str | None, bool]]) -> dict[str, Any]:
    records = []
    for index, (group, _) in enumerate(batch):
        attributes = {"ApproximateReceiveCount": str(index % 3 + 1)}
        if group is not None:
            attributes["MessageGroupId"] = group
        records.append(
            {
                "messageId": f"m{index}",
                "receiptHandle": f"r{index}",
                "body": f"body {index}",
                "attributes": attributes,
                "eventSource": "aws:sqs",
            }
        )
    return {"Records": records}


def _failing(batch: list[tuple[str | None, bool]]) -> set[str]:
    return {f"body {index}" for index, (_, fails) in enumerate(batch) if fails}


def _recording(batch: list[tuple[str | None, bool]], handled: list[str]) -> Callable[[Any], None]:
    """A record handler that notes each record it is given and fails the ones the batch says."""
    failing = _failing(batch)

    def record_handler(record: Any) -> None:
        handled.append(record.body)
        if record.body in failing:
            raise RuntimeError("fails")

    return record_handler


def _powertools(batch: list[tuple[str | None, bool]]) -> tuple[dict[str, Any], list[str]]:
    handled: list[str] = []
    record_handler = _recording(batch, handled)
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    processor.raise_on_entire_batch_failure = False
    return dict(
        process_partial_response(event=_event(batch), record_handler=record_handler, processor=processor)
    ), handled


def _ours(batch: list[tuple[str | None, bool]]) -> tuple[dict[str, Any], list[str]]:
    handled: list[str] = []
    return dict(process_fifo_batch(_event(batch), _recording(batch, handled))), handled


@settings(max_examples=300, deadline=None)
@given(batches.filter(bool))
def test_the_same_records_are_handled_and_reported_as_with_powertools(batch: list[tuple[str | None, bool]]) -> None:
    assert _ours(batch) == _powertools(batch)


def test_a_failure_holds_back_the_rest_of_its_group_only() -> None:
    batch = [("a", True), ("b", False), ("a", False), (None, True), (None, False), ("b", False)]
    response, handled = _ours(batch)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]
    }
    assert handled == ["body 0", "body 1", "body 3", "body 4", "body 5"]


def test_every_record_failing_is_still_a_partial_response() -> None:
    response, _ = _ours([("a", True), ("b", True)])
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_a_record_carries_what_the_worker_reads() -> None:
    record = SqsRecord.from_event_record(_event([("a", False), ("a", False), ("a", False)])["Records"][2])
    assert record == SqsRecord("m2", "r2", "body 2", "a", 3)


@pytest.mark.parametrize("event", [{}, {"Records": None}, {"records": []}])
def test_an_event_that_is_no_sqs_batch_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no Records list"):
        process_fifo_batch(event, lambda record: None)


def _parallel(batch: list[tuple[str | None, bool]], workers: int) -> tuple[dict[str, Any], list[str]]:
    handled: list[str] = []
    return dict(process_fifo_batch(_event(batch), _recording(batch, handled), parallel=workers)), handled


def _by_group(batch: list[tuple[str | None, bool]], handled: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for index, (group, _) in enumerate(batch):
        body = f"body {index}"
        if body in handled:
            groups.setdefault(group or body, []).append(body)
    return groups


@settings(max_examples=300, deadline=None)
@given(batches.filter(bool), st.integers(min_value=2, max_value=10))
def test_groups_in_parallel_answer_as_one_at_a_time(batch: list[tuple[str | None, bool]], workers: int) -> None:
    response, handled = _parallel(batch, workers)
    one_at_a_time, handled_in_order = _ours(batch)
    assert response == one_at_a_time
    assert sorted(handled) == sorted(handled_in_order)
    # Within a group, records are still handled one after the other, in batch order.
    assert _by_group(batch, handled) == _by_group(batch, handled_in_order)


def _meeting(timeout: float) -> Callable[[Any], None]:
    """A record handler that waits for the other group's record (BrokenBarrierError if it never comes)."""
    both = threading.Barrier(2, timeout=timeout)
    return lambda record: both.wait() and None


def test_groups_of_one_batch_are_handled_at_the_same_time() -> None:
    event = _event([("a", False), ("b", False)])
    assert process_fifo_batch(event, _meeting(30), parallel=2) == {"batchItemFailures": []}
    # One at a time, the first record waits for a record that only comes after it.
    assert process_fifo_batch(event, _meeting(0.2), parallel=1) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]
    }
