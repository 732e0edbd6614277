"""The async path in the local stack: the two queues as CDK declares them, the worker and the fallback fed by SQS."""

from __future__ import annotations

import json
import os
from typing import Any

from functions.adapters import factory
from slipway.local.lambda_runtime import cold_start
from slipway.local.services import LocalContext
from slipway.local.sqs import SqsEventSource
from stage.environments import worker_environment
from stage.names import ResourceNames
from stage.settings import StageSettings

WORKER_MODULE = "functions.inference.async_worker"
FALLBACK_MODULE = "functions.inference.async_fallback"


def create_queues(sqs: Any, settings: StageSettings, names: ResourceNames) -> tuple[str, str]:
    """Create the dead-letter queue and the requests queue with its redrive policy; their URLs."""
    dead_letters = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(settings.async_jobs.dead_letter_retention_seconds)},
    )["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": settings.async_jobs.max_receive_count}
    requests = sqs.create_queue(
        QueueName=names.requests_queue,
        Attributes={
            "VisibilityTimeout": str(settings.async_jobs.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return requests, dead_letters


class AsyncJobsService:
    """Creates the queues, then runs the worker on the requests queue and the fallback on the dead letters."""

    def __init__(self) -> None:
        self.sources: list[SqsEventSource] = []

    def start(self, context: LocalContext) -> None:
        settings, names = context.settings, context.names
        sqs = factory.client("sqs")
        requests, dead_letters = create_queues(sqs, settings, names)
        os.environ.update(worker_environment(settings, names, service=names.inference_service))
        worker = cold_start(WORKER_MODULE)
        fallback = cold_start(FALLBACK_MODULE)
        region = settings.region
        self.sources = [
            SqsEventSource(
                sqs, queue_url=requests, handler=worker.lambda_handler, region=region,
                batch_size=settings.async_jobs.batch_size, retry_delay_seconds=1,
                function_name=names.async_worker_function,
            ),
            SqsEventSource(
                sqs, queue_url=dead_letters, handler=fallback.lambda_handler, region=region,
                batch_size=settings.async_jobs.batch_size, retry_delay_seconds=5,
                function_name=names.async_fallback_function,
            ),
        ]  # fmt: skip
        for source in self.sources:
            source.start()

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        self.sources = []
