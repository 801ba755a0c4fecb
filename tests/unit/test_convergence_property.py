"""Property: whatever happens to a set of Close tasks, and however their events are delivered
(duplicated, reordered, hit by ChartMogul faults and retried until they succeed), ChartMogul
ends with exactly one task per live Close task, matching its latest state, on its lead's
current customer, and none for a deleted task or a task whose lead has no customer.

The script also moves tasks to a lead with no ChartMogul customer yet, unassigns them (their
ChartMogul task goes to DEFAULT_ASSIGNEE), and afterwards may create that lead's customer
and merge another lead's customer away: the parked retries and each task's next event must
bring every task to the right customer.

The same property over DynamoDB Local and the HTTP simulators (fewer examples):
tests/integration/test_convergence_property.py.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasksync.models.close import CloseEvent
from tests.fakes.chartmogul import Faults
from tests.fakes.script import FIRST_WEEK_OPERATIONS as OPERATIONS
from tests.fakes.script import Script, perform, scripts
from tests.fakes.world import DEFAULT_ASSIGNEE, World, make_world

EXAMPLES = int(os.environ.get("TASKSYNC_UNIT_PROPERTY_EXAMPLES", "2000"))
NEW_LEAD_EMAIL = "cto@initech.example"  # no ChartMogul customer until the script creates one


def assert_converged(world: World, task_ids: list[str], customers: dict[str, str | None]) -> None:
    live = [t for t in task_ids if t in world.close.tasks]
    mirrored_count = 0
    for task_id in live:
        task = world.close.tasks[task_id]
        expected_customer = customers[task["lead_id"]]
        if expected_customer is None:
            link = world.links.get(task_id)
            assert link is not None
            assert link.cm_task_uuid is None, "a task stayed on another lead's customer"
            continue
        assignees = {world.rep_id: world.rep, world.other_rep_id: world.other_rep, None: DEFAULT_ASSIGNEE}
        mirrored = world.assert_mirrors(task_id, assignee=assignees[task["assigned_to"]])
        assert mirrored.customer_uuid == expected_customer
        assert world.links.claimed_by(mirrored.task_uuid) == task_id
        mirrored_count += 1
    for task_id in set(task_ids) - set(live):
        link = world.links.get(task_id)
        assert link is None or link.cm_task_uuid is None
    assert len(world.cm_tasks()) == mirrored_count, "a duplicate or a leftover ChartMogul task"


MAX_STEPS = 12
# At most 3 events per step (a completion: updated, completed, activity created) and 1 per task.
MOST_EVENTS = 3 * MAX_STEPS + 4


@dataclass(frozen=True)
class Case:
    """One example, drawn in one go: an interactive `st.data()` draw costs several times more,
    and the property needs thousands of examples."""

    reopen_via_null: bool
    script: Script
    error_rate: float
    lost_rate: float
    fault_seed: int
    duplicates: int  # modulo the number of events + 1, which only the script's run knows
    delivery_seed: int
    customer_appears: bool
    customers_merged: bool


cases = st.builds(
    Case,
    reopen_via_null=st.booleans(),
    script=scripts(OPERATIONS, max_tasks=4, max_steps=MAX_STEPS),
    error_rate=st.sampled_from([0.0, 0.2, 0.4]),
    lost_rate=st.sampled_from([0.0, 0.2]),
    fault_seed=st.integers(0, 2**16),
    duplicates=st.integers(0, MOST_EVENTS),
    delivery_seed=st.integers(0, 2**32),
    customer_appears=st.booleans(),
    customers_merged=st.booleans(),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_any_delivery_converges(case: Case) -> None:
    world = make_world(reopen_via_null=case.reopen_via_null)
    new_lead = world.close.add_lead("Initech", emails=[NEW_LEAD_EMAIL])
    task_ids = [
        world.new_task(f"Task {n}", assigned_to=world.rep_id, date="2025-03-01")["id"]
        for n in range(case.script.task_count)
    ]
    for step, (operation, index) in enumerate(case.script.actions):
        perform(world, operation, task_ids[index], step, unmatched_lead=new_lead)
    # Parsed once, as the worker does. Duplicates and order come from a drawn count and seed:
    # far cheaper to generate than lists and st.permutations, which is what lets thousands of
    # examples run in seconds (hypothesis still shrinks the count and the seed).
    events = [CloseEvent.model_validate(event) for event in world.close.events]
    shuffle = random.Random(case.delivery_seed)
    deliveries = events + [shuffle.choice(events) for _ in range(case.duplicates % (len(events) + 1))]
    shuffle.shuffle(deliveries)
    world.chartmogul.inject(Faults(error_rate=case.error_rate, lose_response_rate=case.lost_rate, seed=case.fault_seed))
    for event in deliveries:
        world.apply_until_done(event, attempts=1000)
    customers: dict[str, str | None] = {world.lead: world.customer, world.other_lead: world.other_customer}
    customers[new_lead] = None
    assert_converged(world, task_ids, customers)

    # Later: the unmatched lead's customer may appear, and a merge in ChartMogul may move the
    # first lead's contact email to another customer. Parked retries and each task's next
    # event (once the cached match is older than CUSTOMER_CACHE_TTL_SECONDS) follow.
    if case.customer_appears:
        customers[new_lead] = world.chartmogul.add_customer(name="Initech", email=NEW_LEAD_EMAIL)
    if case.customers_merged:
        merged_away = world.chartmogul.customers[world.customer]
        world.chartmogul.customers[world.customer] = merged_away.model_copy(update={"email": "merged@acme.example"})
        customers[world.lead] = world.chartmogul.add_customer(name="Acme (merged)", email="ops@acme.example")
    world.clock.advance(world.engine.settings.customer_cache_ttl_seconds + 1)
    world.retry_parked()
    before = len(world.close.events)
    for step, task_id in enumerate(task_ids):
        perform(world, "edit", task_id, 100 + step)
    for event in world.close.events[before:]:
        world.apply_until_done(CloseEvent.model_validate(event), attempts=1000)
    world.chartmogul.clear_faults()
    world.retry_parked()
    assert_converged(world, task_ids, customers)
