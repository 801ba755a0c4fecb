"""Test-only answers a simulator gives in front of its own routes, and the reconciler's retry.

The simulators play the documented API. Some answers the engine must survive are not
documented (a refused reopen, a 404 for a POST naming a merged customer, a 400 for an
assignee): a test puts a handler in front of the simulator's own route to play them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from tasksync.logic.results import ApplyResult
from tasksync.models.close import refetch_event
from tasksync_dev.sandbox._server import Request, Response, SimulatorServer
from tests.integration.engine_harness import SyncWorld

# Return None to let the simulator's own route answer.
Answer = Callable[[Request], Response | None]


def answer_first(simulator: SimulatorServer, method: str, pattern: str, answer: Answer) -> None:
    """Route ``method pattern`` through ``answer`` first, falling back to the simulator's route."""
    compiled = re.compile(f"^{pattern}$")
    own = [handler for m, p, handler in simulator._routes if m == method and p.pattern == compiled.pattern]

    def handler(request: Request) -> Response:
        answered = answer(request)
        if answered is not None:
            return answered
        return own[0](request) if own else simulator.not_found()

    # Routes are tried in order: the first one that matches answers.
    simulator._routes.insert(0, (method, compiled, handler))


def retry_parked(world: SyncWorld) -> list[ApplyResult]:
    """What a reconciler run does: wait out every backoff, then re-drive each parked task due."""
    world.clock.advance(world.services.settings.park_retry_max_seconds + 1)
    now = world.clock()
    moment = datetime.fromtimestamp(now, UTC)
    due = list(world.links.parked_due(now))
    return [
        world.apply(refetch_event(link.close_task_id, link.task_type or "lead", link.lead_id, moment, reason="retry"))
        for link in due
    ]
