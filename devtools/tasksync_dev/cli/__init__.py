"""`tasksync`: the operator's command line (also `python -m tasksync_dev`).

Every failure ends as one line on stderr and a non-zero exit code, never a traceback: 2 for
input the operator can fix (arguments, an unknown stack or stack file, configuration), 1 when
the stack or an API failed. Error lines carry ids, names and API answers, never a key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.errors import InvalidInput, TaskSyncError
from tasksync_dev.cli.output import EXIT_FAILED, EXIT_USAGE, CommandFailed, one_line
from tasksync_dev.cli.parser import build_parser
from tasksync_dev.cli.stack import TargetChoice, open_stack

INTERRUPTED = 130
# What a shell reports for a program ended by SIGPIPE (128 + 13): `tasksync ... | head` read enough.
CLOSED_PIPE = 141


def _fail(message: str, code: int) -> int:
    print(f"tasksync: error: {one_line(message)}", file=sys.stderr)
    return code


def _aws_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    operation = getattr(exc, "operation_name", "call")
    return f"AWS {operation} failed: {error.get('Code', 'Unknown')}: {error.get('Message', '')}"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one command; return the process exit code."""
    try:
        code = _run(argv, environ)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Python would still flush stdout at exit
        # and complain, so stdout now points at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE
    return code


def _run(argv: Sequence[str] | None, environ: Mapping[str, str] | None) -> int:
    environ = os.environ if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
        choice = TargetChoice(
            stack_name=getattr(args, "stack_name", None),
            local=bool(getattr(args, "local", False)),
            stack_file=getattr(args, "stack_file", None),
            region=getattr(args, "region", None),
            profile=getattr(args, "profile", None),
        )
        stack = open_stack(choice, environ)
        try:
            code: int = args.handler(stack, args)
        finally:
            stack.shutdown()
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except CommandFailed as exc:
        return _fail(exc.message, exc.exit_code)
    except InvalidInput as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TaskSyncError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except ClientError as exc:
        return _fail(_aws_error(exc), EXIT_FAILED)
    except BotoCoreError as exc:
        return _fail(f"AWS: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    return code


__all__ = ["main"]
