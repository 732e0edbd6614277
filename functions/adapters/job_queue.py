"""The async requests queue in SQS, and moving dead letters back to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.core.jobs import JobMessage


class SqsJobQueue:
    """Sends job messages to the requests queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, message: JobMessage) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message.model_dump_json())


@dataclass(frozen=True)
class RedriveReport:
    """What `redrive` moved."""

    moved: int
    remaining: int


def redrive(sqs: Any, *, dead_letter_url: str, target_url: str, limit: int | None = None) -> RedriveReport:
    """Move messages from the dead-letter queue back to the requests queue, each sent before it is deleted.

    A crash between the two leaves a message in both queues; the job store's one-result
    rule makes that harmless. (SQS's StartMessageMoveTask does the same server-side, but
    only on AWS; this loop works against the local stack too.)
    """
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        received = sqs.receive_message(
            QueueUrl=dead_letter_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            sqs.send_message(QueueUrl=target_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    attributes = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    return RedriveReport(moved=moved, remaining=int(attributes.get("ApproximateNumberOfMessages", 0)))
