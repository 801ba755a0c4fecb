"""Sync-back: ChartMogul calls per pass for 1,000 open linked tasks, measured both ways.

The issue left the detection method to measurement: list ChartMogul's open tasks
(`completed=false`, 200 a page) against the links, or list the tasks of every customer that has
an open linked task. Both are run here over HTTP against the ChartMogul simulator (with real
cursor paging), with the links in DynamoDB Local; the first is what `SyncBack` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.close_api import CloseClient
from tasksync.dal.links import TaskLinkStore
from tasksync.logic.syncback import SyncBack, SyncBackReport
from tasksync.models._parsing import format_utc
from tasksync.models.chartmogul import TaskFields
from tasksync.models.close import CloseTask
from tasksync.models.link import LinkState, TaskLink
from tests.bench.report import BenchResult, Measurement
from tests.bench.world import Backends, backends

LIMIT_PER_SECOND = 40.0  # ChartMogul's documented rate limit
INTERVAL_SECONDS = 300  # the default reconcile interval
BUDGET_SHARE = 0.10  # the goal: at most this share of ChartMogul's budget per interval
ASSIGNEE = "cs@example.com"


@dataclass
class _Ledger:
    passes: int = 0

    def count_pass(self) -> int:
        self.passes += 1
        return self.passes

    def record(self, report: SyncBackReport) -> None:
        pass


def _seed(world: Backends, tasks: int, customers: int) -> tuple[list[str], list[str]]:
    """``tasks`` open tasks mirrored and linked, spread over ``customers``: (uuids, customer uuids)."""
    close, chartmogul = world.close, world.chartmogul
    chartmogul.add_user(ASSIGNEE)
    user = close.add_user("rep@sales.example")["id"]
    lead_id = close.seed_demo()["acme"]
    owners = [chartmogul.add_customer(name=f"Customer {n}")["uuid"] for n in range(customers)]
    client = ChartMogulClient(base_url=f"{chartmogul.url}/v1", api_key=chartmogul.api_key)
    store = TaskLinkStore(world.dynamodb, world.state_table)
    uuids: list[str] = []
    for n in range(tasks):
        task = CloseTask.model_validate(
            close.create_task(lead_id=lead_id, text=f"Task {n}", assigned_to=user, date="2026-12-24")
        )
        fields = TaskFields(task_details=f"Task {n}", assignee=ASSIGNEE, due_date="2026-12-24")
        created = client.create_task(customer_uuid=owners[n % customers], fields=fields)
        link = TaskLink(
            task.id,
            LinkState.ACTIVE,
            version=format_utc(task.date_updated),
            cm_task_uuid=created.task_uuid,
            customer_uuid=owners[n % customers],
            lead_id=lead_id,
            task_type="lead",
            fields=fields,
            fingerprint=fields.fingerprint(),
            updated_at=time.time() - 60,
        )
        store.save(None, link)
        uuids.append(created.task_uuid)
    return uuids, owners


def run(endpoint: str, *, tasks: int = 1000, customers: int = 400, changed: int = 10) -> BenchResult:
    with backends(endpoint, rate_limit_per_second=None, max_parallel=None) as world:
        uuids, owners = _seed(world, tasks, customers)
        chartmogul = ChartMogulClient(base_url=f"{world.chartmogul.url}/v1", api_key=world.chartmogul.api_key)
        close = CloseClient(base_url=f"{world.close.url}/api/v1", api_key=world.close.api_key)
        sync_back = SyncBack(
            close=close,
            chartmogul=chartmogul,
            links=TaskLinkStore(world.dynamodb, world.state_table),
            ledger=_Ledger(),
        )
        quiet = sync_back.run()
        for task_uuid in uuids[:changed]:
            world.chartmogul.person_completes(task_uuid)
        busy = sync_back.run()
        after = sync_back.run()
        before = chartmogul.calls
        for owner in owners:
            list(chartmogul.iter_tasks(customer_uuid=owner, completed=False, per_page=200))
        per_customer = chartmogul.calls - before
    budget = LIMIT_PER_SECOND * INTERVAL_SECONDS
    goal = BUDGET_SHARE * budget
    result = BenchResult()
    result.rows = [
        Measurement(
            "sync-back",
            f"ChartMogul calls per pass, {tasks} open linked tasks, no change",
            str(quiet.chartmogul_calls),
            f"10% of 40/s × {INTERVAL_SECONDS} s = {goal:.0f}",
            quiet.chartmogul_calls / budget,
            "≤ 0.10×",
            quiet.chartmogul_calls <= goal,
        ),
        Measurement(
            "sync-back",
            f"ChartMogul calls per pass, {changed} completed in ChartMogul",
            str(busy.chartmogul_calls),
            f"10% of 40/s × {INTERVAL_SECONDS} s = {goal:.0f}",
            busy.chartmogul_calls / budget,
            "≤ 0.10×",
            busy.chartmogul_calls <= goal and busy.completions_written == changed,
        ),
        Measurement(
            "sync-back",
            "ChartMogul calls per pass, listing per customer instead",
            str(per_customer),
            f"list open tasks: {quiet.chartmogul_calls}",
            per_customer / max(1, quiet.chartmogul_calls),
        ),
    ]
    result.details = (
        f"{tasks} open tasks linked in DynamoDB Local, spread over {customers} ChartMogul customers in the"
        f" simulator (HTTP, cursor paging). A pass with no change made {quiet.chartmogul_calls} ChartMogul"
        f" calls (the open-task list, 200 a page) and {quiet.close_calls} Close calls. After {changed} tasks"
        f" were completed in ChartMogul, the next pass made {busy.chartmogul_calls} ChartMogul calls (the"
        f" list plus one GET per candidate) and {busy.close_calls} Close calls (a GET and a PUT per"
        f" candidate), writing back {busy.completions_written}; the pass after it made"
        f" {after.chartmogul_calls} ChartMogul calls and {after.close_calls} Close calls. Listing per"
        f" customer with an open linked task instead costs {per_customer} calls a pass. ChartMogul's budget"
        f" at the default {INTERVAL_SECONDS} s interval is {budget:.0f} requests; the goal is at most"
        f" {goal:.0f} ({BUDGET_SHARE:.0%})."
    )
    result.figures = {
        "syncback_calls_quiet": float(quiet.chartmogul_calls),
        "syncback_calls_busy": float(busy.chartmogul_calls),
    }
    return result


if __name__ == "__main__":
    from tests.bench.report import plain_table
    from tests.bench.world import dynamodb_local

    with dynamodb_local() as local_endpoint:
        bench = run(local_endpoint)
    print(plain_table(bench.rows))
    print(bench.details)
