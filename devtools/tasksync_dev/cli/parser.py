"""The command line: `tasksync [TARGET] COMMAND ...` (stdlib argparse only).

Target options may come before or after the command (`tasksync --local status` and
`tasksync status --local` both work): every parser gets them, with suppressed defaults so a
subcommand never overwrites what the top level parsed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from tasksync_dev.cli import catch_up, dlq, status, webhook
from tasksync_dev.cli.output import UsageError
from tasksync_dev.cli.stack import Stack

Command = Callable[[Stack, argparse.Namespace], int]


class CommandLineParser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line (raised, so main() reports it)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def package_version() -> str:
    try:
        return version("tasksync")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "(not installed)"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _target_options() -> CommandLineParser:
    options = CommandLineParser(add_help=False)
    group = options.add_argument_group("target (choose one)")
    group.add_argument(
        "--stack",
        dest="stack_name",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="a deployed stack: read its CloudFormation outputs",
    )
    group.add_argument(
        "--local",
        action="store_true",
        default=argparse.SUPPRESS,
        help="the stack `make run` runs (its stack.json in $TASKSYNC_LOCAL_DIR, default .local/)",
    )
    group.add_argument(
        "--stack-file",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="a stack.json written by the local runner",
    )
    group.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of a deployed stack")
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile for a deployed stack")
    return options


def _command(
    subparsers: argparse._SubParsersAction[CommandLineParser],
    name: str,
    handler: Command,
    help_text: str,
    parents: list[CommandLineParser],
    *,
    json_output: bool = False,
) -> CommandLineParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
    parser.set_defaults(handler=handler)
    if json_output:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def build_parser() -> CommandLineParser:
    target = _target_options()
    parser = CommandLineParser(
        prog="tasksync",
        description="Operate a tasksync stack: the Close webhook, backfills, reconciliation, parked tasks, the DLQ.",
        parents=[target],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parents = [target]

    hooks = commands.add_parser("webhook", help="the Close webhook subscription").add_subparsers(
        title="webhook commands", metavar="ACTION", required=True
    )
    register = _command(hooks, "register", webhook.register, "subscribe the stack to Close's task events", parents)
    register.add_argument("--url", help="the receiver URL (default: the stack's WebhookUrl output)")
    for name, handler, help_text in (
        ("status", webhook.status, "status, pause reason and health of the stack's subscriptions"),
        ("pause", webhook.pause, "pause the subscription"),
        ("resume", webhook.resume, "resume the subscription"),
        ("delete", webhook.delete, "delete the subscription and its stored signature key"),
    ):
        action = _command(hooks, name, handler, help_text, parents, json_output=name == "status")
        action.add_argument("--id", help="the subscription (needed when the stack has several)")

    backfill = _command(
        commands, "backfill", catch_up.backfill, "enqueue every Close task updated since a date", parents
    )
    backfill.add_argument("--since", type=_date, required=True, metavar="YYYY-MM-DD")
    reconcile = _command(
        commands, "reconcile", catch_up.reconcile, "run one reconciliation now", parents, json_output=True
    )
    reconcile.add_argument(
        "--budget", type=_positive, default=None, metavar="SECONDS", help="stop after this long (default 240)"
    )
    report = _command(
        commands,
        "status",
        status.status,
        "recent tasks, link counts, queue depths, checkpoints",
        parents,
        json_output=True,
    )
    report.add_argument(
        "--recent",
        type=_positive,
        default=status.RECENT_LINKS,
        metavar="N",
        help="list the N latest tasks (default 10)",
    )
    _command(commands, "parked", status.parked, "list parked tasks", parents, json_output=True)
    replay = _command(commands, "replay", catch_up.replay, "apply one Close event again", parents)
    replay.add_argument("event_id", metavar="EVENT_ID", help="a Close event id (ev_...)")

    queue = commands.add_parser("dlq", help="the event dead-letter queue").add_subparsers(
        title="dlq commands", metavar="ACTION", required=True
    )
    peek = _command(
        queue, "list", dlq.list_messages, "show dead-lettered events without consuming them", parents, json_output=True
    )
    peek.add_argument("--limit", type=_positive, default=dlq.DEFAULT_LIST_LIMIT, help="at most this many")
    move = _command(queue, "redrive", dlq.redrive, "move dead-lettered events back to the event queue", parents)
    move.add_argument("--limit", type=_positive, default=None, help="at most this many (default: all there now)")
    return parser
