"""`tasksync status` and `tasksync parked`: what the sync state looks like right now.

`status` lists the latest tasks (Close task, ChartMogul task, state, customer, title), then the
counts by state, the queues and the reconciler's checkpoints.

Both scan the task links (an occasional operator read, never on the hot path), so they count
on a progress line for big tables.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from tasksync.dal.checkpoints import RunRecord
from tasksync.dal.links import LinkState, TaskLink
from tasksync.dal.syncback_ledger import SyncBackLedger
from tasksync_dev.cli.dlq import depth
from tasksync_dev.cli.output import Progress, one_line, print_json, print_table
from tasksync_dev.cli.stack import Stack

RECENT_LINKS = 10
TITLE_WIDTH = 60

# LinkState -> what the operator calls it.
STATE_LABELS = {
    LinkState.ACTIVE: "linked",
    LinkState.PARKED: "parked",
    LinkState.DELETED: "deleted",
    LinkState.CREATING: "creating",
}


def _scan(stack: Stack) -> list[TaskLink]:
    progress = Progress("task links read", every_seconds=1.0)
    links = []
    for link in stack.links.scan_links():
        links.append(link)
        progress.add()
    progress.done(only_if_shown=True)
    return links


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _title(link: TaskLink) -> str | None:
    fields = link.fields or link.intended_fields  # a parked or creating task has only what it meant to write
    return fields.task_details if fields is not None else None


def _untitled(row: dict[str, Any]) -> str:
    # A task parked before it was translated has no title yet; its reason says more than "-".
    return f"(parked: {row['parked_reason']})" if row["parked_reason"] else "-"


def _recent(links: list[TaskLink], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` links written last, newest first."""
    latest = sorted(links, key=lambda link: (link.updated_at, link.close_task_id), reverse=True)[:limit]
    return [
        {
            "close_task_id": link.close_task_id,
            "chartmogul_task_uuid": link.cm_task_uuid,
            "title": _title(link),
            "state": STATE_LABELS[link.state],
            "parked_reason": link.parked_reason if link.state is LinkState.PARKED else None,
            "customer_uuid": link.customer_uuid or link.intended_customer,
            "lead_id": link.lead_id,
            "updated_at": _iso(link.updated_at),
        }
        for link in latest
    ]


def collect(stack: Stack, recent: int = RECENT_LINKS) -> dict[str, Any]:
    links = _scan(stack)
    counts = Counter(STATE_LABELS[link.state] for link in links)
    reasons = Counter(link.parked_reason or "(no reason recorded)" for link in links if link.state is LinkState.PARKED)
    checkpoints = stack.checkpoints.all()
    return {
        "stack": stack.target.name,
        "recent": _recent(links, recent),
        "tasks": {label: counts.get(label, 0) for label in STATE_LABELS.values()},
        "parked_reasons": dict(reasons.most_common()),
        "queue": depth(stack.sqs, stack.queue_url),
        "dlq": depth(stack.sqs, stack.dlq_url),
        "checkpoints": {
            f"{object_type}:{action}": moment.isoformat()
            for (object_type, action), moment in sorted(checkpoints.items())
        },
        "last_checkpoint": max(checkpoints.values()).isoformat() if checkpoints else None,
        # Emails ChartMogul refused as assignees (their tasks went to DEFAULT_ASSIGNEE or were
        # parked): map them in ASSIGNEE_MAP or add the user in ChartMogul.
        "refused_assignees": {
            r.email: r.refusal for r in sorted(stack.cache.refused_assignees(), key=lambda r: r.email)
        },
        "last_reconcile": RunRecord(stack.dynamodb, stack.settings.state_table).read(),
        "sync_back": SyncBackLedger(stack.dynamodb, stack.settings.state_table).last(),
    }


def status(stack: Stack, args: argparse.Namespace) -> int:
    report = collect(stack, args.recent)
    if args.json:
        print_json(report)
        return 0
    tasks = report["tasks"]
    print(f"stack {report['stack']}")
    if report["recent"]:
        print_table(
            [
                [
                    row["close_task_id"],
                    row["chartmogul_task_uuid"] or "-",
                    row["state"],
                    row["customer_uuid"] or "-",
                    one_line(row["title"] or _untitled(row), TITLE_WIDTH),
                ]
                for row in report["recent"]
            ],
            ["CLOSE TASK", "CHARTMOGUL TASK", "STATE", "CUSTOMER", "TITLE"],
        )
    else:
        print("no tasks mirrored yet")
    print("tasks: " + ", ".join(f"{tasks[label]} {label}" for label in STATE_LABELS.values()))
    for reason, count in report["parked_reasons"].items():
        print(f"  parked {count:>5}  {one_line(reason, 200)}")
    for email, refusal in report["refused_assignees"].items():
        print(f"  refused assignee {email} ({one_line(refusal, 160)}): map it in ASSIGNEE_MAP")
    for name, label in (("queue", "event queue"), ("dlq", "dead-letter queue")):
        print(f"{label}: {report[name]['waiting']} waiting, {report[name]['in_flight']} in flight")
    run = report["last_reconcile"]
    if run:
        last = run["last"]
        print(
            f"last reconcile pass: {last.get('finished_at')}: {last.get('events_seen', 0)} events seen, "
            f"{last.get('events_already_applied', 0)} already applied, {last.get('events_enqueued', 0)} enqueued, "
            f"{last.get('events_poisoned', 0)} to the DLQ, {last.get('failures', 0)} failures"
            f"{'' if last.get('caught_up') else ' (not caught up yet)'} ({run['runs']} passes so far)"
        )
    if not report["checkpoints"]:
        print("reconciler checkpoints: none yet (the reconciler has not run)")
    else:
        print(f"last reconciler checkpoint: {report['last_checkpoint']}")
        for pair, moment in report["checkpoints"].items():
            print(f"  {pair:<40} {moment}")
    print_sync_back(report["sync_back"])
    return 0


def print_sync_back(last: dict[str, Any] | None) -> None:
    """The last sync-back pass (SYNC_COMPLETION_BACK), and a warning when Close refused a write."""
    if last is None:
        print("sync-back: no pass yet (SYNC_COMPLETION_BACK is off, or the reconciler has not run)")
        return
    print(
        f"last sync-back pass: {last['started_at']}: {last['checked']} checked, "
        f"{last['completions_written']} completions and {last['reopenings_written']} reopenings written back, "
        f"{last['chartmogul_aligned']} aligned in ChartMogul, {last['conflicts']} conflicts"
    )
    for task_id in last.get("deleted_in_chartmogul", []):
        print(f"  deleted in ChartMogul (Close unchanged): {task_id}")
    if last.get("close_write_refused"):
        print(f"WARNING: {last['close_write_refused']}; give tasksync a Close API key that can edit tasks")


def parked(stack: Stack, args: argparse.Namespace) -> int:
    links = sorted(
        (link for link in _scan(stack) if link.state is LinkState.PARKED),
        key=lambda link: (link.retry_at is None, link.retry_at or 0.0, link.close_task_id),
    )
    rows: list[dict[str, Any]] = [
        {
            "close_task_id": link.close_task_id,
            "reason": link.parked_reason,
            "attempts": link.attempts,
            "next_retry": _iso(link.retry_at),
            "lead_id": link.lead_id,
        }
        for link in links
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no parked tasks")
        return 0
    print_table(
        [
            [
                row["close_task_id"],
                str(row["attempts"]),
                row["next_retry"] or "-",
                one_line(row["reason"] or "-", 200),
            ]
            for row in rows
        ],
        ["CLOSE TASK", "ATTEMPTS", "NEXT RETRY", "REASON"],
    )
    print(f"{len(rows)} parked")
    return 0
