"""An SQS queue as every queue of the stack is made: encrypted with SQS-managed keys, reachable over TLS only."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def private_queue(
    scope: Construct,
    construct_id: str,
    name: str,
    *,
    retention: Duration | None = None,
    visibility_timeout: Duration | None = None,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    """Queue `name` (in `scope`), SSE-SQS encrypted and refusing requests that do not use TLS."""
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=name,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
    )
