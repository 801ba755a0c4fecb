"""Property: applying each batch as the worker plans it (a task's consecutive events as one, the
newest) leaves ChartMogul exactly where applying every event on its own does.

Events reach the queue in Close's order, some a second time later on (the reconciler
re-enqueues what it finds in the event log); SQS hands them over in batches of up to 10,
each task's in order. ChartMogul faults are retried until each apply goes through.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.coalescing import BatchPlan, ParsedRecord
from tasksync.models.queue import QueuedEvent
from tests.fakes.chartmogul import Faults
from tests.fakes.script import OPERATIONS, Script, perform, scripts
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


MAX_STEPS = 14
# At most 3 events per step (a completion: updated, completed, activity created) and 1 per task.
MOST_EVENTS = 3 * MAX_STEPS + 3


@dataclass(frozen=True)
class Case:
    """One example, drawn in one go (cheaper than interactive `st.data()` draws)."""

    reopen_via_null: bool
    script: Script
    delivery_seed: int
    repeats: int  # modulo the number of events + 1, which only the script's run knows
    error_rate: float


cases = st.builds(
    Case,
    reopen_via_null=st.booleans(),
    script=scripts(OPERATIONS, max_tasks=3, max_steps=MAX_STEPS),
    delivery_seed=st.integers(0, 2**32),
    repeats=st.integers(0, MOST_EVENTS),
    error_rate=st.sampled_from([0.0, 0.3]),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_coalesced_batches_converge(case: Case) -> None:
    world = make_world(reopen_via_null=case.reopen_via_null)
    task_ids = [world.new_task(f"Task {n}", date="2025-03-01")["id"] for n in range(case.script.task_count)]
    for step, (operation, index) in enumerate(case.script.actions):
        perform(world, operation, task_ids[index], step)
    bodies = [QueuedEvent.from_raw(event).message_body() for event in world.close.events]
    rng = random.Random(case.delivery_seed)
    # Repeats go in after the event they repeat: the queue keeps each task's order.
    for _ in range(case.repeats % (len(bodies) + 1)):
        index = rng.randrange(len(bodies))
        bodies.insert(rng.randint(index + 1, len(bodies)), bodies[index])
    records = [ParsedRecord.parse(f"m{n}", body) for n, body in enumerate(bodies)]
    world.chartmogul.inject(Faults(error_rate=case.error_rate, seed=rng.randrange(2**16)))
    start = 0
    while start < len(records):
        size = rng.randint(1, 10)
        apply_batch(world, records[start : start + size])
        start += size
    world.chartmogul.clear_faults()
    assert_converged(world, task_ids, {world.lead: world.customer, world.other_lead: world.other_customer})
