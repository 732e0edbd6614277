"""The dead-letter fallback Lambda: answers every dead-lettered job with plan B, flagged with the reason.

It needs only the live pointer (for the declared fallback answer) and the
stored request (for the row count), never the model. A record it cannot
handle (malformed body, request gone) is reported failed and stays in the
dead-letter queue, where the DLQ-depth alarm sees it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters import factory
from functions.core import telemetry
from functions.core.jobs import JobMessage
from functions.inference import async_jobs
from functions.inference.config import WorkerConfig

ASYNC_DEAD_LETTERS_ANSWERED = "AsyncDeadLettersAnswered"

config = WorkerConfig.from_environ()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
store = factory.job_store(config.artifacts_bucket)
pointer = factory.pointer_store(config.live_pointer_parameter)


@tracer.capture_method(capture_response=False)
def answer_record(record: SQSRecord) -> str:
    """Store the plan-B result of the job a dead letter names."""
    message = JobMessage.model_validate_json(record.body)
    live = pointer.read()
    result = async_jobs.answer_dead_letter(message, store=store, fallback=live.fallback, version=live.version)
    rows = len(result.predictions)
    metrics.add_metric(name=ASYNC_DEAD_LETTERS_ANSWERED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows)
    logger.warning("dead-lettered job answered by plan B", extra={"job_id": result.job_id, "reason": result.reason})
    return result.job_id


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=answer_record, processor=processor, context=context)
