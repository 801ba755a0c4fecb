"""`python -m tasksync_dev.local [--fresh]` (what `make run` runs): start the local stack, wait for Ctrl-C.

--fresh (`make run FRESH=1`) empties this mode's tables kept in .local/ first (see
tasksync_dev.local.persistence for what a restart keeps).

Environment: PORT (default 3000; 0 picks a free one), CLOSE_API_KEY + CHARTMOGUL_API_KEY for the
real APIs (else the sandbox), CLOSE_API_URL / CHARTMOGUL_API_URL, CLOSE_WEBHOOK_SIGNATURE_KEY,
RECONCILE_INTERVAL_SECONDS (default 30 here), TASKSYNC_LOCAL_DIR (default .local/),
TASKSYNC_LOG_FORMAT=json, TASKSYNC_LOCAL_DYNAMODB=moto, TASKSYNC_SANDBOX_CHARTMOGUL_ERROR_RATE=0.3
(the sandbox ChartMogul then refuses that share of writes with a 5xx: watch the retries), and every
setting of the app itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tasksync.errors import InvalidInput
from tasksync_dev.local.stack import LocalStack, LocalStackError

READY_LINE = "tasksync local stack is ready (Ctrl-C stops it)"


def _command(executable: str) -> str:
    """`python` as the user would type it: relative to the current directory when inside it."""
    path = Path(executable)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return executable


def _tasksync_command() -> str:
    """The operator CLI as it can be typed here: the venv's script when it is there (it is not on PATH)."""
    script = Path(sys.executable).parent / "tasksync"
    return _command(str(script)) if script.exists() else f"{_command(sys.executable)} -m tasksync_dev"


def banner(stack: LocalStack) -> str:
    state = stack.state()
    python = _command(sys.executable)
    tasksync = _tasksync_command()
    aws = (
        f"DynamoDB Local {state['endpoints']['dynamodb']}, SQS and Secrets Manager on moto {state['endpoints']['sqs']}"
        if state["dynamodb_engine"] == "dynamodb-local"
        else f"DynamoDB, SQS and Secrets Manager on moto {state['endpoints']['sqs']}"
    )
    lines = [
        f"tasksync local stack ({state['mode']} mode)",
        f"  receiver    POST {state['receiver_url']}",
        f"  worker      polls {state['queues']['EventQueue']}",
        f"  reconciler  every {stack.options.reconcile_interval_seconds} s",
        f"  AWS         {aws}",
        f"  state       {stack.persistence.describe()}",
    ]
    if state["mode"] == "sandbox":
        close, chartmogul = state["close"], state["chartmogul"]
        lines += [
            f"  Close       {close['api_url']}  (simulator; API key {close['api_key']})",
            f"  ChartMogul  {chartmogul['api_url']}  (simulator; API key {chartmogul['api_key']})",
            f"  webhook     subscription {state['webhook']['subscription_id']} signs with CLOSE_WEBHOOK_SIGNATURE_KEY",
            *(
                [f"  faults      ChartMogul refuses {stack.options.chartmogul_error_rate:.0%} of writes with a 5xx"]
                if stack.options.chartmogul_error_rate
                else []
            ),
            "",
            "Try it, in another terminal:",
            f"  {python} -m tasksync_dev.local.sample",
            "    creates a task in the sandbox Close, signs its webhook as Close does and posts it here;",
            "    --complete/--reopen/--delete TASK_ID change it, --curl prints curl commands instead;",
            "    --lead umbrella picks a lead no ChartMogul customer matches: its task parks.",
            "    (It signs at send time: a saved curl command is refused after SIGNATURE_TOLERANCE_SECONDS.)",
        ]
    else:
        lines += [
            f"  Close       {state['close']['api_url']}",
            f"  ChartMogul  {state['chartmogul']['api_url']}",
            "  webhook     Close delivers only to a public URL: expose this port through a tunnel",
            f"              (e.g. cloudflared tunnel --url http://localhost:{state['port']}), subscribe",
            "              https://<tunnel>/webhooks/close in Close and set CLOSE_WEBHOOK_SIGNATURE_KEY to its key",
        ]
        if not stack.environment.get("CLOSE_WEBHOOK_SIGNATURE_KEY"):
            lines.append(
                "  webhook     CLOSE_WEBHOOK_SIGNATURE_KEY is not set: deliveries are refused (401); "
                "the reconciler still catches up from Close's event log"
            )
    lines += [
        "",
        "See what happened (also `make status`):",
        f"  {tasksync} --local status     the mirrored tasks, parked ones and the queues",
        f"  {tasksync} --local parked     parked tasks and why",
        "",
    ]
    return "\n".join(lines)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tasksync_dev.local", description="Run tasksync locally (what `make run` runs)."
    )
    parser.add_argument(
        "--fresh", action="store_true", help="empty this mode's tables kept in .local/ first (make run FRESH=1)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop_requested.is_set():
            return  # already stopping; a second Ctrl-C does not cut the clean-up short
        print(f"\n{signal.Signals(signum).name}: stopping...", flush=True)
        stop_requested.set()

    # Installed before anything starts, so that a Ctrl-C during start-up also ends cleanly. SIGHUP
    # (the terminal closed) too: DynamoDB Local runs in its own process group and would outlive us.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        stack = LocalStack(os.environ, fresh=arguments.fresh, keep_sandbox=True)
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        stack.start()
    except (InvalidInput, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(banner(stack), flush=True)
        print(READY_LINE, flush=True)
        while not stop_requested.wait(1.0):
            pass
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
