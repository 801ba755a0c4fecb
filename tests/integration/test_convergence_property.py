"""Property: whatever happens to a set of Close tasks, and however their events are delivered
(duplicated, reordered, hit by ChartMogul faults and retried until they succeed), ChartMogul
ends with exactly one task per live Close task, matching its latest state, and none for a
deleted task.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync_dev.sandbox._server import FaultPlan
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import CloseSimulator
from tests.fakes.script import OPERATIONS, perform
from tests.integration.engine_harness import SyncWorld, make_world

EXAMPLES = int(os.environ.get("TASKSYNC_PROPERTY_EXAMPLES", "25"))


def assert_converged(world: SyncWorld, task_ids: list[str]) -> None:
    live = [t for t in task_ids if t in world.close.tasks]
    for task_id in live:
        task = world.close.tasks[task_id]
        rep = world.rep if task["assigned_to"] == world.rep_id else world.other_rep
        mirrored = world.assert_mirrors(task_id, assignee=rep)
        expected_customer = world.customer if task["lead_id"] == world.lead else world.other_customer
        assert mirrored["customer_uuid"] == expected_customer
    for task_id in set(task_ids) - set(live):
        link = world.links.get(task_id)
        assert link is None or link.cm_task_uuid is None
    assert len(world.cm_tasks()) == len(live), "a duplicate or a leftover ChartMogul task"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_delivery_converges(state_tables: Any, data: st.DataObject) -> None:
    task_count = data.draw(st.integers(min_value=1, max_value=4), label="tasks")
    script = data.draw(
        st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, task_count - 1)), max_size=10),
        label="operations",
    )
    error_rate = data.draw(st.sampled_from([0.0, 0.2, 0.4]), label="5xx rate")
    lost_rate = data.draw(st.sampled_from([0.0, 0.2]), label="lost response rate")
    seed = data.draw(st.integers(0, 2**16), label="fault seed")
    with CloseSimulator() as close, ChartMogulSimulator(rate_limit_per_second=None) as chartmogul:
        world = make_world(close, chartmogul, state_tables.client, state_tables.state)
        task_ids = [
            close.create_task(lead_id=world.lead, text=f"Task {n}", assigned_to=world.rep_id, date="2025-03-01")["id"]
            for n in range(task_count)
        ]
        for step, (operation, index) in enumerate(script):
            perform(world, operation, task_ids[index], step)
        events = list(close.events)
        duplicates = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
        deliveries = data.draw(st.permutations(events + duplicates), label="delivery order")
        chartmogul.inject(FaultPlan(error_rate=error_rate, lose_response_rate=lost_rate, seed=seed))
        for event in deliveries:
            world.apply_until_done(event)
        chartmogul.clear_faults()
        assert_converged(world, task_ids)
