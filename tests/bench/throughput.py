"""Throughput ceiling: a backfill of many tasks against the ChartMogul simulator's 40 requests/s.

Several worker threads apply the tasks' `created` events concurrently, each with its own
engine and HTTP sessions (as separate Lambda invocations would have), all sharing one
RequestPacer: in one process the pacer is the budget. Across Lambda processes it cannot be
shared, so template.yaml divides the budget instead (worker CHARTMOGUL_REQUESTS_PER_SECOND × its
MaximumConcurrency, plus the reconciler's, stays under 40).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from tasksync.dal.pacing import RequestPacer
from tasksync.logic.results import Outcome
from tasksync.models.close import CloseEvent
from tasksync.wiring import ApiKeys, build_services
from tests.bench.report import BenchResult, Measurement
from tests.bench.world import backends
from tests.integration.engine_harness import make_world

LIMIT_PER_SECOND = 40.0
# A token bucket lets at most rate + burst requests into any one second: 38/s with a burst of 1
# stays under the limit with one request to spare for scheduling jitter between threads.
PACED_PER_SECOND = 38.0
PACER_BURST = 1
WORKERS = 4


def run(endpoint: str, *, tasks: int) -> BenchResult:
    with backends(endpoint, pool=WORKERS + 2, rate_limit_per_second=LIMIT_PER_SECOND) as parts:
        world = make_world(parts.close, parts.chartmogul, parts.dynamodb, parts.state_table)
        # One pacer for every client in the process, the warm-up's included.
        pacer = RequestPacer(PACED_PER_SECOND, burst=PACER_BURST)
        world.services.chartmogul.pacer = pacer
        close, chartmogul = parts.close, parts.chartmogul
        # Warm the lead and user caches outside the measurement (a backfill meets few leads).
        for lead in (world.lead, world.other_lead):
            warm = close.create_task(lead_id=lead, text="warm-up", assigned_to=world.rep_id, date="2025-04-01")
            world.apply(world.last_event(warm["id"]))
        logged = len(close.events)
        for index in range(tasks):
            close.create_task(
                lead_id=world.lead if index % 2 else world.other_lead,
                text=f"Backfilled task {index}",
                assigned_to=world.rep_id if index % 3 else world.other_rep_id,
                date=f"2025-06-{index % 28 + 1:02d}",
            )
        # `close.events` deep-copies the whole log: read it once, not once per task.
        events: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        for event in close.events[logged:]:
            if event["object_type"].startswith("task.") and event["action"] == "created":
                events.put(event)
        keys = ApiKeys(close=close.api_key, chartmogul=chartmogul.api_key)
        engines = [
            build_services(world.services.settings, dynamodb=parts.dynamodb, keys=keys, pacer=pacer)
            for _ in range(WORKERS)
        ]
        for _ in engines:
            events.put(None)
        created = [0] * WORKERS
        retried = [0] * WORKERS
        failures: list[BaseException] = []
        chartmogul.calls.clear()

        def work(index: int) -> None:
            engine = engines[index].engine
            try:
                while (event := events.get()) is not None:
                    for _ in range(20):
                        try:
                            result = engine.apply(CloseEvent.model_validate(event))
                        except Exception:  # a retryable failure: SQS would deliver it again
                            retried[index] += 1
                            continue
                        created[index] += result.outcome is Outcome.CREATED
                        break
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,), name=f"bench-backfill-{i}") for i in range(WORKERS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        if failures:
            raise failures[0]
        calls = list(chartmogul.calls)
        limited = [c for c in calls if c.status == 429]
    rate = len(calls) / elapsed
    result = BenchResult()
    result.rows += [
        Measurement(
            "throughput",
            f"backfill of {tasks} tasks: ChartMogul requests/s",
            f"{rate:.1f}/s",
            f"limit {LIMIT_PER_SECOND:.0f}/s",
            rate / LIMIT_PER_SECOND,
            "≥ 0.90×",
            rate >= 0.9 * LIMIT_PER_SECOND,
        ),
        Measurement("throughput", "429 answers from ChartMogul", str(len(limited)), goal="0", met=not limited),
    ]
    result.details = (
        f"{tasks} tasks, {WORKERS} worker threads (each its own engine and HTTP sessions) sharing one"
        f" RequestPacer of {PACED_PER_SECOND:g}/s (burst {PACER_BURST}); the simulator answers 429 above"
        f" {LIMIT_PER_SECOND:g} requests in any sliding second. {sum(created)} created in {elapsed:.1f} s;"
        f" {len(calls)} ChartMogul requests ({len(calls) / max(1, sum(created)):.2f} per task),"
        f" {len(limited)} answered 429, {sum(retried)} applies retried."
    )
    return result
