"""`tasksync dlq list|redrive`: look at and re-drive the event dead-letter queue.

SQS has no real peek: `list` receives with a short visibility timeout and then hands every
message straight back (visibility 0), so a listing hides nothing for longer than it runs.
FIFO queues return no further messages of a group while earlier ones are in flight, which
is why a listing can show fewer messages than the queue's depth; the footer says so.

`redrive` moves messages one by one: send to the event queue (same MessageGroupId, so a task's
events stay in order; a fresh MessageDeduplicationId, so SQS's five-minute dedup window cannot
drop an event that passed through the queue recently), then delete from the DLQ. A message is
deleted only after its copy was sent, so a failure midway loses nothing (at worst it is sent
twice, which the worker's idempotency absorbs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tasksync.errors import InvalidInput
from tasksync.models.queue import QueuedEvent
from tasksync_dev.cli.output import CommandFailed, Progress, one_line, print_json, print_table
from tasksync_dev.cli.stack import Stack

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

PEEK_VISIBILITY_SECONDS = 30
MOVE_VISIBILITY_SECONDS = 60
# Long polling for a moment makes an empty answer trustworthy (short polls sample servers).
RECEIVE_WAIT_SECONDS = 1
DEFAULT_LIST_LIMIT = 100


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_id: str | None
    close_task: str | None
    kind: str | None  # "task.lead updated"
    reason: str | None
    receive_count: int
    sent_at: str | None


def _describe(message: MessageTypeDef) -> DeadLetter:
    attributes = message.get("Attributes", {})
    reason_attribute = message.get("MessageAttributes", {}).get("reason")
    reason = reason_attribute.get("StringValue") if reason_attribute else None
    event_id = close_task = kind = None
    try:
        queued = QueuedEvent.from_message_body(message.get("Body", ""))
        event_id, close_task = queued.event.id, queued.event.close_task_id
        kind = f"{queued.event.object_type} {queued.event.action}"
    except InvalidInput as exc:
        reason = reason or f"unreadable: {exc}"
        try:
            body = json.loads(message.get("Body", ""))
            event_id = str(body.get("id")) if isinstance(body, dict) and body.get("id") else None
        except ValueError:
            pass
    sent = attributes.get("SentTimestamp")
    return DeadLetter(
        message_id=message.get("MessageId", "?"),
        event_id=event_id,
        close_task=close_task or attributes.get("MessageGroupId"),
        kind=kind,
        reason=one_line(reason, 300) if reason else None,
        receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds") if sent else None,
    )


def _receive(sqs: SQSClient, queue_url: str, count: int, visibility: int) -> list[MessageTypeDef]:
    return sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=visibility,
        WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])


def _hand_back(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> None:
    """Make peeked messages visible again right away."""
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, message in enumerate(messages[start : start + 10])
            ],
        )


def depth(sqs: SQSClient, queue_url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {
        "waiting": int(attributes.get("ApproximateNumberOfMessages", "0")),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
    }


def peek(sqs: SQSClient, queue_url: str, limit: int) -> list[DeadLetter]:
    held: list[MessageTypeDef] = []
    seen: set[str] = set()
    try:
        while len(held) < limit:
            fresh = [
                m
                for m in _receive(sqs, queue_url, limit - len(held), PEEK_VISIBILITY_SECONDS)
                if m["MessageId"] not in seen
            ]
            if not fresh:
                break
            seen.update(m["MessageId"] for m in fresh)
            held.extend(fresh)
    finally:
        _hand_back(sqs, queue_url, held)
    return [_describe(message) for message in held]


def list_messages(stack: Stack, args: argparse.Namespace) -> int:
    letters = peek(stack.sqs, stack.dlq_url, args.limit)
    remaining = depth(stack.sqs, stack.dlq_url)
    total = remaining["waiting"] + remaining["in_flight"]
    if args.json:
        print_json({"messages": [asdict(letter) for letter in letters], "depth": remaining})
        return 0
    if not letters:
        print("the dead-letter queue is empty" if total == 0 else f"no message could be received ({total} in the DLQ)")
        return 0
    print_table(
        [
            [
                letter.event_id or "-",
                letter.close_task or "-",
                letter.kind or "-",
                str(letter.receive_count),
                letter.sent_at or "-",
                letter.reason or "-",
            ]
            for letter in letters
        ],
        ["EVENT", "CLOSE TASK", "KIND", "RECEIVES", "SENT", "REASON"],
    )
    print(f"{len(letters)} shown; about {total} in the dead-letter queue")
    return 0


def _group_id(message: MessageTypeDef) -> str:
    group = message.get("Attributes", {}).get("MessageGroupId")
    if group:
        return group
    try:  # a standard-queue message (no group): group by task as the receiver would
        return QueuedEvent.from_message_body(message.get("Body", "")).group_id
    except InvalidInput:
        return "unreadable"


def _move(stack: Stack, message: MessageTypeDef) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=message.get("Body", ""),
        MessageGroupId=_group_id(message),
        MessageDeduplicationId=f"redrive-{uuid.uuid4().hex}",
    )
    stack.sqs.delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def redrive(stack: Stack, args: argparse.Namespace) -> int:
    # Without --limit, move what is there now: messages that fail again and come back while we
    # run are not chased around the loop.
    start = depth(stack.sqs, stack.dlq_url)
    limit: int = args.limit if args.limit is not None else start["waiting"] + start["in_flight"]
    progress = Progress("messages moved to the event queue")
    moved_ids: set[str] = set()
    while progress.count < limit:
        batch = [
            m
            for m in _receive(stack.sqs, stack.dlq_url, limit - progress.count, MOVE_VISIBILITY_SECONDS)
            if m["MessageId"] not in moved_ids
        ]
        if not batch:
            break
        for index, message in enumerate(batch):
            try:
                _move(stack, message)
            except (ClientError, BotoCoreError) as exc:
                _hand_back_quietly(stack.sqs, stack.dlq_url, batch[index:])
                progress.done()
                raise CommandFailed(
                    f"redrive stopped after {progress.count} messages: {one_line(str(exc), 300)}"
                ) from None
            moved_ids.add(message["MessageId"])
            progress.add()
    progress.done()
    left = depth(stack.sqs, stack.dlq_url)
    print(f"moved {progress.count} messages to the event queue; {left['waiting'] + left['in_flight']} left in the DLQ")
    return 0


def _hand_back_quietly(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> None:
    # If this fails too, they become visible again when their visibility timeout ends.
    with contextlib.suppress(ClientError, BotoCoreError):
        _hand_back(sqs, queue_url, messages)
