"""What the async worker and the dead-letter fallback each build at their cold start, and the SQS handler they share.

Both read the worker's environment, log, trace and publish metrics alike, keep jobs in the
same store and hand each record of an SQS event to their own record handler, reporting the
records that failed (partial batch failures). A handler module builds one `QueueFunction`
at import time, so a cold start reads its environment afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters import factory
from functions.adapters.job_store import S3JobStore
from functions.core.event_input import SqsEvent, parse_event
from functions.inference.config import WorkerConfig

QueueHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


class QueueFunction:
    """One queue-fed function of the async path: its configuration, telemetry and job store."""

    def __init__(self) -> None:
        self.config = WorkerConfig.from_environ()
        self.logger = Logger()
        self.tracer = Tracer()
        self.metrics = Metrics()
        self.store: S3JobStore = factory.job_store(self.config.artifacts_bucket)
        self._processor = BatchProcessor(event_type=EventType.SQS)

    def handler(self, record_handler: Callable[[SQSRecord], str]) -> QueueHandler:
        """The Lambda handler that gives each record of an SQS event to `record_handler`.

        Anything but an SQS event is refused whole (MalformedEvent). A batch whose every record
        failed raises (Powertools' default): the whole batch is redelivered, as it would be
        anyway, and the failure shows as a function error.
        """

        @self.logger.inject_lambda_context
        @self.tracer.capture_lambda_handler(capture_response=False)
        @self.metrics.log_metrics
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
            parse_event(SqsEvent, event)
            return process_partial_response(
                event=event, record_handler=record_handler, processor=self._processor, context=context
            )

        return lambda_handler
