"""Property: applying each batch as the worker plans it (a task's consecutive events as one, the
newest) leaves ChartMogul exactly where applying every event on its own does.

Events reach the queue in Close's order, some a second time later on (the reconciler
re-enqueues what it finds in the event log); SQS hands them over in batches of up to 10,
each task's in order. ChartMogul faults are retried until each apply goes through.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.coalescing import BatchPlan, ParsedRecord
from tasksync.models.queue import QueuedEvent
from tests.fakes.chartmogul import Faults
from tests.fakes.script import OPERATIONS, perform
from tests.fakes.world import World, make_world
from tests.unit.test_convergence_property import assert_converged

EXAMPLES = int(os.environ.get("TASKSYNC_UNIT_PROPERTY_EXAMPLES", "2000")) // 4


def apply_batch(world: World, batch: list[ParsedRecord]) -> None:
    """What the worker does with one batch, minus SQS and idempotency: each record on its own,
    except a run, whose representative is applied at its first member's turn."""
    plan = BatchPlan(batch)
    for record in batch:
        run = plan.run_of(record.message_id)
        if run is None:
            assert record.queued is not None
            world.apply_until_done(record.queued.event, attempts=1000)
        elif record is run.first:
            assert run.representative.queued is not None
            world.apply_until_done(run.representative.queued.event, attempts=1000)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_coalesced_batches_converge(data: st.DataObject) -> None:
    world = make_world(reopen_via_null=data.draw(st.booleans(), label="null reopens"))
    task_count = data.draw(st.integers(min_value=1, max_value=3), label="tasks")
    steps = data.draw(st.lists(st.integers(0, len(OPERATIONS) * task_count - 1), max_size=14), label="steps")
    task_ids = [world.new_task(f"Task {n}", date="2025-03-01")["id"] for n in range(task_count)]
    for step, code in enumerate(steps):
        perform(world, OPERATIONS[code % len(OPERATIONS)], task_ids[code // len(OPERATIONS)], step)
    bodies = [QueuedEvent.from_raw(event).message_body() for event in world.close.events]
    rng = random.Random(data.draw(st.integers(0, 2**32), label="delivery seed"))
    # Repeats go in after the event they repeat: the queue keeps each task's order.
    for _ in range(data.draw(st.integers(0, len(bodies)), label="repeats")):
        index = rng.randrange(len(bodies))
        bodies.insert(rng.randint(index + 1, len(bodies)), bodies[index])
    records = [ParsedRecord.parse(f"m{n}", body) for n, body in enumerate(bodies)]
    world.chartmogul.inject(
        Faults(error_rate=data.draw(st.sampled_from([0.0, 0.3]), label="5xx rate"), seed=rng.randrange(2**16))
    )
    start = 0
    while start < len(records):
        size = rng.randint(1, 10)
        apply_batch(world, records[start : start + size])
        start += size
    world.chartmogul.clear_faults()
    assert_converged(world, task_ids, {world.lead: world.customer, world.other_lead: world.other_customer})
