"""moto in server mode (SQS, Secrets Manager, SSM, ...) as a child process on 127.0.0.1.

    python -m tasksync_dev.local.moto_server PORT

A separate process, not moto's ThreadedMotoServer, for the same reason as DynamoDB Local: moto's
SQS does real work per call (every ReceiveMessage looks at every queued message), and in the
runner's own process that work held the GIL that the receiver, the worker and the simulators
need, so webhooks timed out while the queue was busy. moto is a dev dependency: this module is
only run by the local runner and the tests.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from datetime import datetime
from typing import Any

from tasksync_dev.local.child_process import ChildServer


class MotoServer(ChildServer):
    name = "moto server"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "tasksync_dev.local.moto_server", str(port)]


def _read_the_clock_cheaply() -> None:
    """Give moto's SQS a faster clock that tells the same time.

    moto's SQS asks for "now" through a datetime round trip (utcnow, then the difference to the
    epoch) for every queued message on every call: each SendMessage and ReceiveMessage recomputes
    the queue's attributes, which looks at every message's visibility and delay. With a few
    hundred messages queued that clock was 85% of a send's time and made sends take 100 ms and
    receives a second. time.time() gives the same number, without the datetime objects; a time
    passed in (dt) still goes through moto's own conversion. Nothing else about moto changes.
    """
    sqs_models: Any = importlib.import_module("moto.sqs.models")  # a dev dependency: only here
    unix_time, unix_time_millis = sqs_models.unix_time, sqs_models.unix_time_millis

    def now(dt: datetime | None = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    def now_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else unix_time_millis(dt)

    sqs_models.unix_time, sqs_models.unix_time_millis = now, now_millis


def main(argv: list[str]) -> None:
    # werkzeug logs a line per request (one per SQS poll): tens of thousands in a chaos run.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _read_the_clock_cheaply()
    from moto.server import main as serve  # noqa: PLC0415 - a dev dependency, only here

    serve(["--host", "127.0.0.1", "--port", argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
