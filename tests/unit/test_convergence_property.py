"""Property: whatever happens to a set of Close tasks, and however their events are delivered
(duplicated, reordered, hit by ChartMogul faults and retried until they succeed), ChartMogul
ends with exactly one task per live Close task, matching its latest state, and none for a
deleted task.

The same property over DynamoDB Local and the HTTP simulators (fewer examples):
tests/integration/test_convergence_property.py.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.models.close import CloseEvent
from tests.fakes.chartmogul import Faults
from tests.fakes.script import OPERATIONS, perform
from tests.fakes.world import World, make_world

EXAMPLES = int(os.environ.get("TASKSYNC_UNIT_PROPERTY_EXAMPLES", "2000"))


def assert_converged(world: World, task_ids: list[str]) -> None:
    live = [t for t in task_ids if t in world.close.tasks]
    for task_id in live:
        task = world.close.tasks[task_id]
        rep = world.rep if task["assigned_to"] == world.rep_id else world.other_rep
        mirrored = world.assert_mirrors(task_id, assignee=rep)
        expected_customer = world.customer if task["lead_id"] == world.lead else world.other_customer
        assert mirrored.customer_uuid == expected_customer
        assert world.links.claimed_by(mirrored.task_uuid) == task_id
    for task_id in set(task_ids) - set(live):
        link = world.links.get(task_id)
        assert link is None or link.cm_task_uuid is None
    assert len(world.cm_tasks()) == len(live), "a duplicate or a leftover ChartMogul task"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_delivery_converges(data: st.DataObject) -> None:
    world = make_world(reopen_via_null=data.draw(st.booleans(), label="null reopens"))
    task_count = data.draw(st.integers(min_value=1, max_value=4), label="tasks")
    # One integer per step (operation and task) is cheaper to generate than a tuple.
    steps = data.draw(st.lists(st.integers(0, len(OPERATIONS) * task_count - 1), max_size=12), label="steps")
    script = [(OPERATIONS[step % len(OPERATIONS)], step // len(OPERATIONS)) for step in steps]
    error_rate = data.draw(st.sampled_from([0.0, 0.2, 0.4]), label="5xx rate")
    lost_rate = data.draw(st.sampled_from([0.0, 0.2]), label="lost response rate")
    seed = data.draw(st.integers(0, 2**16), label="fault seed")
    task_ids = [
        world.new_task(f"Task {n}", assigned_to=world.rep_id, date="2025-03-01")["id"] for n in range(task_count)
    ]
    for step, (operation, index) in enumerate(script):
        perform(world, operation, task_ids[index], step)
    # Parsed once, as the worker does. Duplicates and order come from a drawn count and seed:
    # far cheaper to generate than lists and st.permutations, which is what lets thousands of
    # examples run in seconds (hypothesis still shrinks the count and the seed).
    events = [CloseEvent.model_validate(event) for event in world.close.events]
    duplicate_count = data.draw(st.integers(0, len(events)), label="duplicates")
    shuffle = random.Random(data.draw(st.integers(0, 2**32), label="delivery seed"))
    deliveries = events + [shuffle.choice(events) for _ in range(duplicate_count)]
    shuffle.shuffle(deliveries)
    world.chartmogul.inject(Faults(error_rate=error_rate, lose_response_rate=lost_rate, seed=seed))
    for event in deliveries:
        world.apply_until_done(event, attempts=1000)
    world.chartmogul.clear_faults()
    assert_converged(world, task_ids)
