"""API economy: ChartMogul and Close calls per event over a realistic mixed stream, warm caches.

Reps create, edit, reassign, complete, reopen and delete tasks in the Close simulator; every
event it logs (task and completion-activity events) is delivered to the engine in order, and a
share of them is delivered again (Close delivers at least once), some late. Nothing fails.
The lead and user caches are warmed first by one task per lead, outside the count.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from typing import Any

from tasksync.logic.results import ApplyResult, Outcome
from tests.bench.report import BenchResult, Measurement, markdown_table, ms
from tests.bench.world import CapacityMeter, backends
from tests.integration.engine_harness import SyncWorld, make_world

NO_OPS = {Outcome.SKIPPED_STALE, Outcome.UNCHANGED, Outcome.IGNORED, Outcome.NOTED, Outcome.TOMBSTONED}


def _rep_action(world: SyncWorld, rng: random.Random, live: list[str], step: int) -> str:
    """One thing a rep does in Close; returns its kind."""
    close = world.close
    if not live or rng.random() < 0.25:
        lead = rng.choice([world.lead, world.other_lead])
        task = close.create_task(
            lead_id=lead, text=f"Follow up #{step}", assigned_to=world.rep_id, date=f"2025-04-{rng.randint(1, 28):02d}"
        )
        live.append(task["id"])
        return "create"
    task_id = rng.choice(live)
    task = close.tasks[task_id]
    roll = rng.random()
    if roll < 0.30:
        close.update_task(task_id, text=f"{task['text']} (edited {step})")
        return "edit"
    if roll < 0.45:
        assignee = world.other_rep_id if task["assigned_to"] == world.rep_id else world.rep_id
        close.reassign_task(task_id, assignee)
        return "reassign"
    if roll < 0.65:
        if task["is_complete"]:
            close.reopen_task(task_id)
            return "reopen"
        close.complete_task(task_id)
        return "complete"
    if roll < 0.75:
        # Saved without a change to anything we mirror: a newer version, nothing to push.
        close.update_task(task_id, text=task["text"])
        return "resave"
    if roll < 0.85:
        close.delete_task(task_id)
        live.remove(task_id)
        return "delete"
    close.update_task(task_id, date=f"2025-05-{rng.randint(1, 28):02d}")
    return "edit"


Delivery = tuple[str, ApplyResult, float, float, float]  # delivery, result, RRU, WRU, seconds


def run(endpoint: str, *, actions: int, seed: int = 6) -> BenchResult:
    rng = random.Random(seed)
    with backends(endpoint) as parts:
        world = make_world(parts.close, parts.chartmogul, parts.dynamodb, parts.state_table)
        meter = CapacityMeter(parts.dynamodb)
        # Warm the caches: one task per lead (both reps' emails are looked up then too).
        for lead, user in ((world.lead, world.rep_id), (world.other_lead, world.other_rep_id)):
            task = world.close.create_task(lead_id=lead, text="warm-up", assigned_to=user, date="2025-04-01")
            world.apply(world.last_event(task["id"]))
        delivered_upto = len(world.close.events)
        results: list[Delivery] = []
        kinds: Counter[str] = Counter()
        live: list[str] = []
        history: list[dict[str, Any]] = []
        for step in range(actions):
            kinds[_rep_action(world, rng, live, step)] += 1
            fresh = world.close.events[delivered_upto:]
            delivered_upto += len(fresh)
            for event in fresh:
                history.append(event)
                results.append(_apply(world, meter, "fresh", event))
            # At-least-once delivery: now and then an event again, sometimes an old one (late).
            if history and rng.random() < 0.2:
                results.append(_apply(world, meter, "duplicate", rng.choice(history[-10:])))
    return _report(results, kinds)


def _apply(world: SyncWorld, meter: CapacityMeter, delivery: str, event: dict[str, Any]) -> Delivery:
    reads, writes = meter.read_units, meter.write_units
    start = time.perf_counter()
    result = world.apply_until_done(event)
    elapsed = time.perf_counter() - start
    return delivery, result, meter.read_units - reads, meter.write_units - writes, elapsed


def _report(results: list[Delivery], kinds: Counter[str]) -> BenchResult:
    effectual = [r for _, r, _, _, _ in results if r.effectual]
    no_ops = [r for _, r, _, _, _ in results if r.outcome in NO_OPS]
    parked = [r for _, r, _, _, _ in results if r.outcome is Outcome.PARKED]
    cm_effectual = sum(r.chartmogul_calls for r in effectual) / max(1, len(effectual))
    cm_noop_max = max((r.chartmogul_calls for r in no_ops), default=0)
    close_total = sum(r.close_calls for _, r, _, _, _ in results)
    reads = sum(d[2] for d in results) / len(results)
    writes = sum(d[3] for d in results) / len(results)
    seconds = sum(d[4] for d in results) / len(results)
    result = BenchResult()
    result.rows += [
        Measurement(
            "API economy",
            "ChartMogul calls per effectual event",
            f"{cm_effectual:.2f}",
            goal="≤ 1.0",
            met=cm_effectual <= 1.0,
        ),
        Measurement(
            "API economy",
            "ChartMogul calls per no-op event (max)",
            str(cm_noop_max),
            goal="0",
            met=cm_noop_max == 0,
        ),
        Measurement(
            "API economy",
            "Close calls per event (lead and user seen)",
            f"{close_total / len(results):.3f}",
            goal="0",
            met=close_total == 0,
        ),
        Measurement("API economy", "state table RRU / WRU per event (estimate)", f"{reads:.2f} / {writes:.2f}"),
        Measurement("API economy", "engine time per event, mean (local backends)", ms(seconds)),
    ]
    calls_per_event = sum(r.chartmogul_calls for _, r, _, _, _ in results) / len(results)
    result.figures.update(
        read_units_per_event=reads,
        write_units_per_event=writes,
        apply_seconds=seconds,
        chartmogul_calls_per_event=calls_per_event,
    )
    by_outcome: dict[str, list[tuple[ApplyResult, float, float]]] = defaultdict(list)
    for delivery, r, rd, wr, _ in results:
        by_outcome[f"{r.outcome.value} ({delivery})"].append((r, rd, wr))
    rows = [
        [
            label,
            str(len(items)),
            f"{sum(r.chartmogul_calls for r, _, _ in items) / len(items):.2f}",
            f"{sum(r.close_calls for r, _, _ in items) / len(items):.2f}",
            f"{sum(rd for _, rd, _ in items) / len(items):.2f}",
            f"{sum(wr for _, _, wr in items) / len(items):.2f}",
        ]
        for label, items in sorted(by_outcome.items())
    ]
    result.details = (
        f"{sum(kinds.values())} rep actions ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) gave"
        f" {len(results)} deliveries: {len(effectual)} effectual, {len(no_ops)} no-ops, {len(parked)} parked."
        " Per outcome (and whether the delivery was the first or a repeat), the mean API calls and the"
        " estimated DynamoDB capacity units per event on the state table (see `CapacityMeter`; the worker's"
        " idempotency table comes on top):\n\n"
        + markdown_table(
            ["outcome (delivery)", "events", "ChartMogul calls", "Close calls", "RRU", "WRU"],
            rows,
        )
    )
    return result
