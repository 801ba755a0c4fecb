"""Cost model: dollars per million Close task events on AWS, from this run's measurements.

Prices (us-east-1, on demand, before the free tier): Lambda arm64 $0.0000133334 per GB-s and
$0.20 per million requests; SQS FIFO $0.50 per million requests (each 64 KB chunk of a request
counts as one); DynamoDB on demand $0.625 per million WRU and $0.125 per million RRU; HTTP API
$1.00 per million requests.
"""

from __future__ import annotations

import math
from typing import Any

from tasksync_dev.local.template import load_template
from tests.bench.report import BenchResult, markdown_table

LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
SQS_FIFO_REQUEST = 0.50 / 1e6
DYNAMODB_WRU = 0.625 / 1e6
DYNAMODB_RRU = 0.125 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
EVENTS = 1_000_000
# Powertools idempotency writes its record twice per event: "in progress", then "completed".
IDEMPOTENCY_WRU_PER_EVENT = 2.0
# send, receive, delete; a Close event is a few KB, far under one 64 KB chunk.
SQS_REQUESTS_PER_EVENT = 3

# Published no-code prices, found with the search tool (issue 6 asks for a named source).
MAKE_SOURCE = (
    "Make's help page *Changing your subscription* (https://www.make.com/en/help/general/"
    "changing-your-subscription--upgrading,-downgrading,-or-canceling-) works an example with the Core plan"
    " at $113.85 for 150,000 operations, i.e. $0.000759 per operation"
)
MAKE_PER_OPERATION = 113.85 / 150_000
ZAPIER_SOURCE = (
    "Zapier's help article *How pay-per-task billing works in Zapier* (https://help.zapier.com/hc/en-us/"
    "articles/15279018245901) says tasks beyond a plan's limit cost 1.25× the plan's per-task cost and stop"
    " at 3× the limit; it gives no price. The plan price we found is second-hand: a Zapier partner's FAQ"
    " (https://arment.com/ArmstrongIAppConnector/Documentation/FAQ.aspx) quotes Professional at $89 a month"
    " for 5,000 tasks, i.e. $0.0178 per task ($0.02225 beyond the limit)"
)
ZAPIER_PER_TASK = 89 / 5_000


def _memory_mb(template: dict[str, Any], logical_id: str) -> int:
    function = template["Resources"][logical_id].get("Properties", {})
    default = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return int(function.get("MemorySize", default))


def _billed_seconds(seconds: float) -> float:
    return math.ceil(seconds * 1000) / 1000  # Lambda bills whole milliseconds


def run(figures: dict[str, float]) -> BenchResult:
    template = load_template()
    receiver_mb, worker_mb = _memory_mb(template, "ReceiverFunction"), _memory_mb(template, "WorkerFunction")
    receiver_s = _billed_seconds(figures["receiver_handler_p50"] + figures["sqs_send_p50"])
    worker_s = _billed_seconds(figures["apply_seconds"])
    rru = figures["read_units_per_event"]
    wru = figures["write_units_per_event"] + IDEMPOTENCY_WRU_PER_EVENT
    lines = [
        ("HTTP API requests", "1 request", HTTP_API_REQUEST),
        (
            "Lambda receiver",
            f"{receiver_s * 1000:.0f} ms × {receiver_mb} MB + 1 request",
            receiver_s * receiver_mb / 1024 * LAMBDA_GB_SECOND + LAMBDA_REQUEST,
        ),
        (
            "Lambda worker",
            f"{worker_s * 1000:.0f} ms × {worker_mb} MB + 1 request (batches of 1: the worst case)",
            worker_s * worker_mb / 1024 * LAMBDA_GB_SECOND + LAMBDA_REQUEST,
        ),
        (
            "SQS FIFO",
            f"{SQS_REQUESTS_PER_EVENT} requests (send, receive, delete)",
            SQS_REQUESTS_PER_EVENT * SQS_FIFO_REQUEST,
        ),
        (
            "DynamoDB on demand",
            f"{wru:.2f} WRU ({IDEMPOTENCY_WRU_PER_EVENT:g} idempotency) + {rru:.2f} RRU",
            wru * DYNAMODB_WRU + rru * DYNAMODB_RRU,
        ),
    ]
    total = sum(cost for _, _, cost in lines) * EVENTS
    result = BenchResult(figures={"cost_per_million": total})
    rows = [[item, basis, f"${cost * EVENTS:.2f}"] for item, basis, cost in lines]
    rows.append(["**total**", "", f"**${total:.2f}**"])
    make = 2 * MAKE_PER_OPERATION * EVENTS
    zapier = ZAPIER_PER_TASK * EVENTS
    result.details = "\n\n".join(
        [
            markdown_table(["item", "per event", "per million events"], rows),
            "Durations are this run's: the receiver's whole handler (p50) plus one SQS send to moto, and the"
            " engine's mean time per event against the local simulators and DynamoDB Local; AWS's own"
            " latencies to SQS, DynamoDB and the two APIs differ, and a slower ChartMogul makes the worker"
            f" cost more (each extra 100 ms is ${0.1 * worker_mb / 1024 * LAMBDA_GB_SECOND * EVENTS:.2f} per"
            " million). Cold starts, the reconciler (a fixed ~8,600 runs a month at the 5-minute default), the"
            " secrets and CloudWatch are left out.",
            "For comparison, a no-code platform at the same volume (one event = one run that triggers on the"
            " webhook and writes one ChartMogul task):\n\n"
            f"- Make: at least 2 operations per event (the webhook trigger and the HTTP call); {MAKE_SOURCE}:"
            f" **≈ ${make:,.0f} per million events**.\n"
            f"- Zapier: 1 task per event (triggers are free, each successful action is a task). {ZAPIER_SOURCE}:"
            f" **≈ ${zapier:,.0f} per million events** at that rate. Higher tiers cost less per task; we found no"
            " published price for a million tasks a month.",
        ]
    )
    return result
