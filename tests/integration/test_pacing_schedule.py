"""The shared ChartMogul schedule in DynamoDB Local: its conditional writes, and two OS processes
sharing it against the ChartMogul simulator's 40 requests per sliding second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tasksync.dal.schedule import DynamoDBSchedule, ScheduleFull
from tests.support.template import REPO_ROOT

if TYPE_CHECKING:
    from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
    from tests.support.dynamodb import StateTables

NOW = 1_700_000_000_000_000  # µs
SPAN = 131_580  # five slots at 38/s


def test_an_idle_schedule_starts_now_and_a_busy_one_where_the_last_reservation_ended(
    state_tables: StateTables,
) -> None:
    schedule = DynamoDBSchedule(state_tables.client, state_tables.state)
    first = schedule.reserve(SPAN, NOW, NOW + 2_000_000, expected=0)
    assert (first.start, first.next_slot) == (NOW, NOW + SPAN)
    second = schedule.reserve(SPAN, NOW + 10, NOW + 2_000_010, expected=first.next_slot)
    assert (second.start, second.next_slot) == (NOW + SPAN, NOW + 2 * SPAN)
    assert schedule.writes == 2  # one write each: no read, no lost race


def test_a_wrong_hint_costs_one_more_write_and_still_reserves_the_right_slots(state_tables: StateTables) -> None:
    schedule = DynamoDBSchedule(state_tables.client, state_tables.state)
    schedule.reserve(SPAN, NOW, NOW + 2_000_000, expected=0)
    # This process last saw the schedule long ago (idle), but another one just reserved.
    later = schedule.reserve(SPAN, NOW + 1000, NOW + 2_001_000, expected=0)
    assert later.start == NOW + SPAN
    # And the other way round: it believes the schedule busy, but it went idle meanwhile.
    idle = schedule.reserve(SPAN, NOW + 5_000_000, NOW + 7_000_000, expected=NOW + 6_000_000)
    assert idle.start == NOW + 5_000_000
    assert schedule.writes == 5


def test_a_process_alone_on_the_schedule_picks_the_right_write_every_time(state_tables: StateTables) -> None:
    """Busy right after its own reservation, idle after a pause: with nobody else moving the
    schedule, what the process last saw is exact, and no write is refused (a refused write
    costs a write unit like any other)."""
    schedule = DynamoDBSchedule(state_tables.client, state_tables.state)
    seen, now = 0, NOW
    gaps = [0, 10, 500_000, 10, 10, 500_000, 10, 500_000]
    for gap in gaps:
        now += gap
        seen = schedule.reserve(SPAN, now, now + 2_000_000, expected=seen).next_slot
    assert schedule.writes == len(gaps)


def test_a_schedule_further_ahead_than_the_caller_waits_is_refused_untouched(state_tables: StateTables) -> None:
    schedule = DynamoDBSchedule(state_tables.client, state_tables.state)
    schedule.hold_until(NOW + 5_000_000)
    with pytest.raises(ScheduleFull) as caught:
        schedule.reserve(SPAN, NOW, NOW + 2_000_000, expected=0)
    assert caught.value.next_slot == NOW + 5_000_000
    schedule.hold_until(NOW + 1_000_000)  # an earlier hold never moves the schedule back
    assert schedule.reserve(SPAN, NOW + 4_000_000, NOW + 6_000_000, expected=0).start == NOW + 5_000_000


_PROCESS = textwrap.dedent(
    """
    import json, sys
    from tasksync.config import SyncSettings
    from tasksync.models.chartmogul import TaskFields
    from tasksync.wiring import ApiKeys, build_services
    from tests.support.dynamodb import dynamodb_client_for

    endpoint, table, url, key, customer, count = sys.argv[1:7]
    settings = SyncSettings.from_env({"STATE_TABLE": table, "CHARTMOGUL_API_URL": url})
    services = build_services(settings, dynamodb=dynamodb_client_for(endpoint), keys=ApiKeys("unused", key))
    chartmogul = services.chartmogul
    for n in range(int(count)):
        fields = TaskFields(task_details=f"{sys.argv[7]} {n}", assignee="alice@sales.example", due_date="2026-01-01")
        chartmogul.create_task(customer_uuid=customer, fields=fields)
    pacer = chartmogul.pacer
    print(json.dumps({"writes": pacer.schedule.writes, "used": pacer.used}))
    """
)


def test_two_worker_processes_share_one_budget_and_meet_no_429(
    dynamodb_local: str, state_tables: StateTables, chartmogul_sim: ChartMogulSimulator
) -> None:
    """Each process alone would send as fast as its pacer lets it; together they must stay under
    the simulator's 40 requests in any sliding second (it answers 429 beyond)."""
    customer = chartmogul_sim.seed_demo()["customers"]["ops@acme.example"]["uuid"]
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'layers' / 'tasksync'}{os.pathsep}{REPO_ROOT}"}
    args = [dynamodb_local, state_tables.state, f"{chartmogul_sim.url}/v1", chartmogul_sim.api_key, customer, "80"]
    processes = [
        subprocess.Popen([sys.executable, "-c", _PROCESS, *args, name], env=env, stdout=subprocess.PIPE, text=True)
        for name in ("first", "second")
    ]
    reports = [json.loads(process.communicate(timeout=120)[0]) for process in processes]
    # (The write cost per call is a `make bench` figure: these runs are too short for its steady state.)
    assert [process.returncode for process in processes] == [0, 0]
    posts = chartmogul_sim.calls_to("POST", r"^/v1/tasks$")
    assert [call.status for call in posts if call.status != 201] == []
    assert len(chartmogul_sim.live_tasks()) == 160
    assert all(report["writes"] > 0 for report in reports)  # both went through the shared item
