"""The dead-letter fallback Lambda: answers every dead-lettered job with plan B, flagged with the reason.

It needs only the live pointer (for the declared fallback answer) and the
stored request (for the row count), never the model. A record whose request is
gone, or that fails for a passing reason, is reported failed and stays in the
dead-letter queue, where the DLQ-depth alarm sees it.

A record whose body is not a job message (a poison message) names no job: no
receive can ever answer it, and reported failed it would come back every
visibility timeout for the queue's 14 days. It is set aside instead: its body
kept as it arrived under async/poison/<message id>.txt (the async expiry applies),
logged by id and size (never its content: it may hold anything), counted
(AsyncPoisonMessages, which alarms), deleted. If the body cannot be kept, the
record fails and stays in the queue.
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
from functions.core.errors import MalformedEvent
from functions.core.event_input import SqsEvent, parse_event, parse_json
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
    """Store the plan-B result of the job a dead letter names; set a poison message aside."""
    try:
        message = parse_json(JobMessage, record.body)
    except MalformedEvent as exc:
        _set_aside(record, exc)
        return record.message_id
    live = pointer.read()
    result = async_jobs.answer_dead_letter(message, store=store, fallback=live.fallback, version=live.version)
    rows = len(result.predictions)
    metrics.add_metric(name=ASYNC_DEAD_LETTERS_ANSWERED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows)
    logger.warning("dead-lettered job answered by plan B", extra={"job_id": result.job_id, "reason": result.reason})
    return result.job_id


def _set_aside(record: SQSRecord, problem: MalformedEvent) -> None:
    key = store.put_poison(record.message_id, record.body)
    metrics.add_metric(name=telemetry.ASYNC_POISON_MESSAGES, unit=MetricUnit.Count, value=1)
    logger.error(
        "poison dead letter set aside (deleted): not a job message",
        extra={
            "message_id": record.message_id,
            "error": str(problem),
            "attributes": record.get("attributes"),
            "md5_of_body": record.get("md5OfBody"),
            "body_chars": len(record.body),
            "kept_at": f"s3://{config.artifacts_bucket}/{key}",
        },
    )


# A batch whose every record failed raises (Powertools' default): the whole batch is redelivered,
# as it would be anyway, and the failure shows as a function error. Poison never counts as failed.
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    parse_event(SqsEvent, event)  # anything but an SQS event is refused whole (MalformedEvent)
    return process_partial_response(event=event, record_handler=answer_record, processor=processor, context=context)
