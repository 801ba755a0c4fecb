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
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tasksync_dev.local.child_process import ChildServer

# How often a waiting long poll looks again when nothing was sent, deleted or made visible
# (visibility also ends by the clock, which tells nobody).
LONG_POLL_TICK = 0.05


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


def _one_change_at_a_time() -> None:
    """Serialise what moto's SQS changes in a queue, and answer a long poll as SQS does.

    moto's server runs each request on a thread of its own, and its SQS models take no lock:
    - a delete rebuilds the queue's message list from a copy, so a message sent meanwhile is
      appended to the old list and lost (three of a 5,000-task backfill were);
    - a receive, a delete and a visibility change all edit the set of messages in flight, and a
      receive that reads it while another request edits it fails ("Set changed size during
      iteration") after it has marked messages received: nobody gets them, they sit out the
      queue's whole visibility timeout (180 s), and their task's later events wait behind them;
    - two receives at once can hand out the same FIFO message group.
    SQS does none of this, so here they take one lock.

    moto's long poll waits only until the queue has *a* visible message, then scans again: when
    every visible message belongs to a FIFO group still in flight (a task's later events behind
    one that waits) it spins for the whole wait, a core's worth of CPU. Here a long poll scans,
    and then waits for a send, a delete or a visibility change before it scans again.
    """
    models: Any = importlib.import_module("moto.sqs.models")  # a dev dependency: only here
    queue_state = threading.RLock()
    news = threading.Condition()
    changes = [0]

    def one_at_a_time(plain: Callable[..., Any]) -> Callable[..., Any]:
        def changed(*args: Any, **kwargs: Any) -> Any:
            with queue_state:
                answer = plain(*args, **kwargs)
            with news:
                changes[0] += 1
                news.notify_all()
            return answer

        return changed

    models.Queue.add_message = one_at_a_time(models.Queue.add_message)
    models.Queue.delete_message = one_at_a_time(models.Queue.delete_message)
    models.SQSBackend.change_message_visibility = one_at_a_time(models.SQSBackend.change_message_visibility)
    receive = models.SQSBackend.receive_message

    def receive_message(backend: Any, queue_name: str, count: int, wait_seconds: int, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + int(wait_seconds or 0)
        while True:
            with news:
                seen = changes[0]
            with queue_state:
                found = receive(backend, queue_name, count, 0, *args, **kwargs)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            with news:
                if changes[0] == seen:  # nothing changed since the scan: wait for a change
                    news.wait(min(left, LONG_POLL_TICK))

    models.SQSBackend.receive_message = receive_message


def main(argv: list[str]) -> None:
    # werkzeug logs a line per request (one per SQS poll): tens of thousands in a chaos run.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _read_the_clock_cheaply()
    _one_change_at_a_time()
    from moto.server import main as serve  # noqa: PLC0415 - a dev dependency, only here

    serve(["--host", "127.0.0.1", "--port", argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
