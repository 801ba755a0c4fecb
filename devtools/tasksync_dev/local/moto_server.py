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
# How long a queue's computed attributes (their approximate counts) are reused when nothing changed.
ATTRIBUTES_FRESH = 0.05


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


def _list_moto_modules_once() -> None:
    """Give moto's request router the list of its own modules once, not on every request.

    moto's server finds the backend for each request under one global lock, and on the way it
    lists moto's package directory and stats each of its ~150 entries: in the burst benchmark
    half of the moto server's request threads were waiting on that lock. The list is fixed
    while the server runs.
    """
    backends: Any = importlib.import_module("moto.backends")  # a dev dependency: only here
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _release_returned(queue: Any) -> None:
    """Take every message whose visibility has ended out of the queue's in-flight set.

    moto does this only as its receive scan reaches each message, after it has looked at the
    message's group: of two messages of one group that come back together, the older one still
    saw the newer one in flight and was skipped, so the newer one was handed out first. SQS
    keeps a group in order.
    """
    for message in [message for message in queue.pending_messages if message.visible]:
        queue.pending_messages.discard(message)


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
    models.SQSBackend.set_queue_attributes = one_at_a_time(models.SQSBackend.set_queue_attributes)
    receive = models.SQSBackend.receive_message

    # moto computes a queue's attributes (three scans of every queued message, for the
    # approximate counts) each time it looks one up: several times per message sent (is
    # deduplication content-based?) and per message received (its retention period). With a
    # thousand messages queued that was most of moto's CPU, on cores the workers share. The
    # attributes are computed again only after a change to a queue, or after ATTRIBUTES_FRESH
    # seconds (visibility and delays also end by the clock): the counts are approximate in SQS.
    computed = models.Queue.attributes.fget

    def attributes(queue: Any) -> dict[str, Any]:
        now = time.monotonic()
        known = getattr(queue, "_tasksync_attributes", None)
        if known is None or known[0] != changes[0] or now - known[1] > ATTRIBUTES_FRESH:
            known = (changes[0], now, computed(queue))
            queue._tasksync_attributes = known
        return dict(known[2])

    models.Queue.attributes = property(attributes)

    def receive_message(backend: Any, queue_name: str, count: int, wait_seconds: int, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + int(wait_seconds or 0)
        while True:
            with news:
                seen = changes[0]
            with queue_state:
                _release_returned(backend.get_queue(queue_name))
                found = receive(backend, queue_name, count, 0, *args, **kwargs)
            if found:  # received messages are in flight now: the counts changed
                with news:
                    changes[0] += 1
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
    _list_moto_modules_once()
    _one_change_at_a_time()
    from moto.server import main as serve  # noqa: PLC0415 - a dev dependency, only here

    serve(["--host", "127.0.0.1", "--port", argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
