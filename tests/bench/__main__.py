"""`make bench` (`python -m tests.bench`): run every measurement, print the table, write the doc.

BENCH_QUICK=1 runs smaller sizes (a few minutes instead of several); the doc says which it was.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import api_economy, cold_start, cost, latency, receiver_overhead, reconcile, syncback, throughput
from tests.bench.machine import machine_summary
from tests.bench.report import BenchResult, plain_table, results_table, write_generated_block
from tests.bench.world import dynamodb_local

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"

FULL = {"cold_samples": 15, "receiver_requests": 2000, "actions": 400, "backfill_tasks": 5000, "webhooks": 100}
QUICK = {"cold_samples": 10, "receiver_requests": 500, "actions": 150, "backfill_tasks": 600, "webhooks": 30}


def _step(name: str) -> float:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    return time.perf_counter()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # A plain SIGTERM would skip the `finally` blocks that stop DynamoDB Local and the servers.
    sys.exit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    sizes = QUICK if quick else FULL
    machine = machine_summary()
    sections: list[tuple[str, BenchResult]] = []

    started = _step("cold start (fresh processes, x86_64 copy of the built layer)")
    sections.append(("Cold start", cold_start.run(samples=sizes["cold_samples"])))
    _step("receiver warm overhead")
    sections.append(("Receiver warm overhead", receiver_overhead.run(requests=sizes["receiver_requests"])))
    with dynamodb_local() as endpoint:
        _step("API economy (mixed stream through the engine)")
        sections.append(("API economy", api_economy.run(endpoint, actions=sizes["actions"])))
        _step(f"throughput (backfill of {sizes['backfill_tasks']} tasks at ChartMogul's 40 requests/s)")
        sections.append(("Throughput ceiling", throughput.run(endpoint, tasks=sizes["backfill_tasks"])))
        sections.append(("Reconciler", reconcile.run(endpoint)))
        sections.append(("Sync-back", syncback.run(endpoint)))
    _step("end-to-end latency (local stack)")
    sections.append(("End-to-end latency", latency.run(webhooks=sizes["webhooks"])))
    figures: dict[str, float] = {}
    for _, section in sections:
        figures.update(section.figures)
    sections.append(("Cost model", cost.run(figures)))
    figures.update(sections[-1][1].figures)
    elapsed = time.perf_counter() - started

    rows = [row for _, section in sections for row in section.rows]
    print(plain_table(rows))
    print(f"\ncost per million Close task events: ${figures['cost_per_million']:.2f}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n\n".join(
        [
            f"## Results of the last run\n\n`make bench`{' with BENCH_QUICK=1' if quick else ''}, {stamp},"
            f" {elapsed:.0f} s in all.\n\n{machine}",
            results_table(rows),
            *[f"### {title}\n\n{section.details}" for title, section in sections if section.details],
        ]
    )
    write_generated_block(DOC, block)
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
