"""moto's server for the queue benchmarks, handing out FIFO messages grouped as SQS does.

    python -m tests.bench.moto_fifo PORT

SQS documents that a ReceiveMessage on a FIFO queue "returns as many messages with the same
message group ID as possible" (AWS re:Post knowledge center, *Why doesn't my Amazon SQS FIFO
queue return all messages or messages in other message groups?*,
https://repost.aws/knowledge-center/sqs-fifo-messages-not-returned). moto returns them in
arrival order instead, which in a queue of many interleaved groups puts one message per group in
each batch. The worker's coalescing depends on that grouping, so the benchmarks' moto lists a
queue's visible messages group by group (groups in order of their oldest message, each group's
messages in order). Everything else is `tasksync_dev.local.moto_server`'s moto, whose queue
changes and receives take one lock (SQS never hands one group to two receives at once).
"""

from __future__ import annotations

import importlib
import sys
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


if __name__ == "__main__":
    _group_fifo_messages()
    moto_server.main(sys.argv[1:])
