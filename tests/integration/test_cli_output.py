"""What the operator sees: `status` lists the latest tasks, `--version`, a closed pipe ends
quietly, each total is printed once, and `sample --curl` leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tasksync.dal.links import LinkState, TaskLink
from tasksync.models.chartmogul import TaskFields
from tasksync_dev.local.sample import curl_command
from tests.integration.cli_harness import Cli, LocalStack, cli, stack
from tests.support.template import REPO_ROOT

__all__ = ["cli", "stack"]  # the fixtures: a local stack state file over DynamoDB Local, moto and the Close simulator


def _fields(title: str) -> TaskFields:
    return TaskFields(task_details=title, assignee="alice@sales.example", due_date="2026-12-04")


def test_status_lists_the_latest_tasks_with_both_ids_state_customer_and_title(stack: LocalStack, cli: Cli) -> None:
    links = stack.links()
    for n in range(12):
        links.save(
            None,
            TaskLink(
                close_task_id=f"task_{n:02d}",
                state=LinkState.ACTIVE,
                cm_task_uuid=f"cm-{n:02d}",
                customer_uuid="cus_acme",
                fields=_fields(f"Acme Corp: call {n}"),
                updated_at=1_700_000_000.0 + n,
            ),
        )
    links.save(
        None,
        TaskLink(
            close_task_id="task_parked",
            state=LinkState.PARKED,
            parked_reason="no ChartMogul customer",
            intended_fields=_fields("Umbrella Corporation: renewal"),
            updated_at=1_800_000_000.0,
        ),
    )

    report = json.loads(cli("--local", "status", "--json", "--recent", "3").out)
    assert report["recent"] == [
        {
            "close_task_id": "task_parked",
            "chartmogul_task_uuid": None,
            "title": "Umbrella Corporation: renewal",
            "state": "parked",
            "parked_reason": "no ChartMogul customer",
            "customer_uuid": None,
            "lead_id": None,
            "updated_at": "2027-01-15T08:00:00+00:00",
        },
        {
            "close_task_id": "task_11",
            "chartmogul_task_uuid": "cm-11",
            "title": "Acme Corp: call 11",
            "state": "linked",
            "parked_reason": None,
            "customer_uuid": "cus_acme",
            "lead_id": None,
            "updated_at": "2023-11-14T22:13:31+00:00",
        },
        {
            "close_task_id": "task_10",
            "chartmogul_task_uuid": "cm-10",
            "title": "Acme Corp: call 10",
            "state": "linked",
            "parked_reason": None,
            "customer_uuid": "cus_acme",
            "lead_id": None,
            "updated_at": "2023-11-14T22:13:30+00:00",
        },
    ]

    text = cli("--local", "status")
    assert text.code == 0, text.err
    rows = text.out.splitlines()
    header = next(i for i, line in enumerate(rows) if line.startswith("CLOSE TASK"))
    assert rows[header].split() == ["CLOSE", "TASK", "CHARTMOGUL", "TASK", "STATE", "CUSTOMER", "TITLE"]
    assert rows[header + 1].split() == ["task_parked", "-", "parked", "-", "Umbrella", "Corporation:", "renewal"]
    assert rows[header + 2].split() == ["task_11", "cm-11", "linked", "cus_acme", "Acme", "Corp:", "call", "11"]
    assert len([line for line in rows if line.startswith("task_")]) == 10


def test_status_says_when_nothing_is_mirrored_yet(stack: LocalStack, cli: Cli) -> None:
    assert "no tasks mirrored yet" in cli("--local", "status").out


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert re.fullmatch(r"tasksync \d+\.\d+\.\d+\n", result.out)


def test_a_closed_pipe_ends_the_cli_quietly(stack: LocalStack) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`| head`) has gone before the first line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tasksync_dev", "--local", "status"],
            cwd=REPO_ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


def test_backfill_and_reconcile_print_each_total_once(stack: LocalStack, cli: Cli) -> None:
    lead = stack.close.add_lead("Acme", emails=["ops@acme.example"])["id"]
    for n in range(3):
        stack.close.create_task(lead_id=lead, text=f"call {n}")

    backfill = cli("--local", "backfill", "--since", "2020-01-01")
    assert backfill.code == 0, backfill.err
    assert backfill.out == "backfill: 3 Close tasks (lead) updated since 2020-01-01 enqueued\n"
    # A slow run may show progress lines (on a terminal they are erased at the end); never a total.
    assert all(line.endswith(" so far: 3") or " so far: " in line for line in backfill.err.splitlines())

    reconcile = cli("--local", "reconcile")
    assert reconcile.code == 0, reconcile.err
    assert reconcile.out.count("events enqueued") == 1
    assert all(" so far: " in line for line in reconcile.err.splitlines())


def test_sample_curl_leaves_no_file_behind_and_sends_the_signed_bytes(tmp_path: Path) -> None:
    body = json.dumps({"event": {"id": "ev_1", "text": 'it\'s "quoted" & spaced'}}).encode()
    before = set(Path(tempfile.gettempdir()).iterdir())
    command = curl_command("http://127.0.0.1:3000/webhooks/close", body, {"close-sig-hash": "ab"})
    assert set(Path(tempfile.gettempdir()).iterdir()) == before
    words = shlex.split(command)
    assert words[words.index("--data-binary") + 1].encode() == body
