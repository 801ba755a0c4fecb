"""moto's server for the queue benchmarks, handing out FIFO messages grouped as SQS does.

    python -m tests.bench.moto_fifo PORT

SQS documents that a ReceiveMessage on a FIFO queue "returns as many messages with the same
message group ID as possible" (AWS re:Post knowledge center, *Why doesn't my Amazon SQS FIFO
queue return all messages or messages in other message groups?*,
https://repost.aws/knowledge-center/sqs-fifo-messages-not-returned). moto returns them in
arrival order instead, which in a queue of many interleaved groups puts one message per group in
each batch. The worker's coalescing depends on that grouping, so the benchmarks' moto lists a
queue's visible messages group by group (groups in order of their oldest message, each group's
messages in order), and serialises ReceiveMessage: moto's threaded server otherwise lets two
concurrent receives hand out the same group (even the same message), which SQS never does, and
a lost copy then sits out the queue's whole visibility timeout. Sends and deletes take turns
too (see below). Everything else is moto's own
`tasksync_dev.local.moto_server`.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from tasksync_dev.local import moto_server


class FifoGroupingMotoServer(moto_server.MotoServer):
    name = "moto server (FIFO grouping as SQS)"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "tests.bench.moto_fifo", str(port)]


def _group_fifo_messages() -> None:
    models: Any = importlib.import_module("moto.sqs.models")
    plain = models.Queue.messages.fget

    def messages(queue: Any) -> list[Any]:
        visible = plain(queue)
        if not queue.fifo_queue:
            return list(visible)
        first_seen: dict[str, int] = {}
        for index, message in enumerate(visible):
            first_seen.setdefault(message.group_id, index)
        return sorted(visible, key=lambda message: first_seen[message.group_id])  # stable: order kept within a group

    models.Queue.messages = property(messages)
    receive = models.SQSBackend.receive_message
    one_at_a_time = threading.Lock()

    def receive_message(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            return receive(backend, *args, **kwargs)

    models.SQSBackend.receive_message = receive_message

    # moto deletes a message by rebuilding the queue's list from a copy, without a lock: a
    # message sent meanwhile is appended to the old list and lost (three of a 5,000-task
    # backfill were, with the workers deleting while the bench topped the queue up). SQS loses
    # nothing, so sends and deletes take turns here.
    one_change = threading.Lock()
    for name in ("add_message", "delete_message"):
        plain_change = getattr(models.Queue, name)

        def changed(queue: Any, *args: Any, _plain: Any = plain_change, **kwargs: Any) -> Any:
            with one_change:
                return _plain(queue, *args, **kwargs)

        setattr(models.Queue, name, changed)


if __name__ == "__main__":
    _group_fifo_messages()
    moto_server.main(sys.argv[1:])
