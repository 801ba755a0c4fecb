"""The operator CLI against real parts (tests.integration.cli_harness): `status` and `parked`."""

from __future__ import annotations

import json

from tasksync.dal.state_cache import StateCache
from tests.integration.cli_harness import Cli, LocalStack, cli, seed_links, stack

__all__ = ["cli", "stack"]  # the fixtures


# ---------------------------------------------------------------------------------- status / parked


def test_status_counts_links_queues_and_checkpoints(stack: LocalStack, cli: Cli) -> None:
    seed_links(stack.links())
    for n in range(2):
        stack.queues.client.send_message(
            QueueUrl=stack.queues.dlq_url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId=f"d{n}"
        )
    stack.queues.client.send_message(
        QueueUrl=stack.queues.events_url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="e"
    )

    result = cli("--local", "status", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["tasks"] == {"linked": 2, "parked": 3, "deleted": 1, "creating": 1}
    assert report["parked_reasons"] == {"no ChartMogul customer": 2, "ChartMogul refused the assignee": 1}
    assert report["queue"] == {"waiting": 1, "in_flight": 0}
    assert report["dlq"] == {"waiting": 2, "in_flight": 0}
    assert report["checkpoints"] == {}

    text = cli("--local", "status")
    assert text.code == 0
    assert "2 linked, 3 parked, 1 deleted, 1 creating" in text.out
    assert "dead-letter queue: 2 waiting" in text.out


def test_status_lists_refused_assignees(stack: LocalStack, cli: Cli) -> None:
    StateCache(stack.tables.client, stack.tables.state).note_assignee_refusal("Rep@Sales.Example", "HTTP 422", 600)
    report = json.loads(cli("--local", "status", "--json").out)
    assert report["refused_assignees"] == {"rep@sales.example": "HTTP 422"}
    assert "refused assignee rep@sales.example" in cli("--local", "status").out


def test_parked_lists_reason_attempts_and_next_retry(stack: LocalStack, cli: Cli) -> None:
    seed_links(stack.links())
    result = cli("--local", "parked", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [(r["close_task_id"], r["attempts"]) for r in rows] == [("task_d", 1), ("task_e", 4), ("task_c", 2)]
    assert rows[0]["reason"] == "no ChartMogul customer"
    assert rows[0]["next_retry"] == "2027-01-15T08:00:00+00:00"

    text = cli("--local", "parked")
    assert "task_e" in text.out
    assert "ChartMogul refused the assignee" in text.out
    assert "3 parked" in text.out
