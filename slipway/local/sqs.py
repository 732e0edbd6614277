"""An SQS event source for the local stack: receive from moto, invoke a handler, honour partial failures.

It does what Lambda's event source mapping does with `ReportBatchItemFailures`:
receive up to `batch_size` messages, pass them as one SQS event, delete the
records the handler did not report failed, and leave the failed ones on the
queue. One difference, for speed: a failed message is made visible again after
`retry_delay_seconds` (0 by default) instead of at the end of the queue's
visibility timeout. moto counts the receives and moves a message to the
dead-letter queue after `maxReceiveCount`, as SQS does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.local.lambda_runtime import FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


def queue_arn(queue_url: str, region: str) -> str:
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def sqs_event(messages: list[dict[str, Any]], *, queue_url: str, region: str) -> dict[str, Any]:
    """A Lambda SQS event for messages as `receive_message` returns them."""
    arn = queue_arn(queue_url, region)
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


@dataclass(frozen=True)
class PollResult:
    """One poll: how many messages were received and how many the handler reported failed."""

    received: int
    failed: int


class SqsEventSource:
    """Feeds one queue to one handler, by `poll_once()` or in a background thread (`start`/`stop`)."""

    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        handler: Handler,
        region: str,
        batch_size: int = 10,
        retry_delay_seconds: int = 0,
        function_name: str = "local",
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._handler = handler
        self._region = region
        self._batch_size = batch_size
        self._retry_delay = retry_delay_seconds
        self._function_name = function_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self, wait_seconds: int = 0) -> PollResult:
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return PollResult(0, 0)
        context = FakeLambdaContext(function_name=self._function_name, aws_request_id=str(uuid.uuid4()))
        try:
            response = self._handler(sqs_event(messages, queue_url=self.queue_url, region=self._region), context)
            failed_ids = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: Lambda retries every record
            failed_ids = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] in failed_ids:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self._retry_delay
                )
            else:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return PollResult(len(messages), len(failed_ids))

    def drain(self, max_polls: int = 1000) -> int:
        """Poll until the queue answers empty; the number of messages received."""
        total = 0
        for _ in range(max_polls):
            result = self.poll_once()
            if not result.received:
                return total
            total += result.received
        raise RuntimeError(f"{self.queue_url} still had messages after {max_polls} polls")

    def start(self, *, wait_seconds: int = 1) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll_once(wait_seconds=wait_seconds)
                except Exception:  # moto stopping under us, or a transient error: keep polling until stopped
                    self._stop.wait(0.5)

        self._thread = threading.Thread(target=loop, name=f"sqs:{self.queue_url.rsplit('/', 1)[-1]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
