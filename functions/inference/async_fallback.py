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

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.adapters import factory
from functions.core import telemetry
from functions.core.errors import MalformedEvent
from functions.core.event_input import parse_json
from functions.core.jobs import JobMessage
from functions.inference import async_jobs
from functions.inference.queue_function import QueueFunction

ASYNC_DEAD_LETTERS_ANSWERED = "AsyncDeadLettersAnswered"

queue = QueueFunction()
pointer = factory.pointer_store(queue.config.live_pointer_parameter)


@queue.tracer.capture_method(capture_response=False)
def answer_record(record: SQSRecord) -> str:
    """Store the plan-B result of the job a dead letter names; set a poison message aside."""
    try:
        message = parse_json(JobMessage, record.body)
    except MalformedEvent as exc:
        _set_aside(record, exc)
        return record.message_id
    live = pointer.read()
    result = async_jobs.answer_dead_letter(message, store=queue.store, fallback=live.fallback, version=live.version)
    rows = len(result.predictions)
    queue.metrics.add_metric(name=ASYNC_DEAD_LETTERS_ANSWERED, unit=MetricUnit.Count, value=1)
    queue.metrics.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows)
    queue.logger.warning(
        "dead-lettered job answered by plan B", extra={"job_id": result.job_id, "reason": result.reason}
    )
    return result.job_id


def _set_aside(record: SQSRecord, problem: MalformedEvent) -> None:
    key = queue.store.put_poison(record.message_id, record.body)
    queue.metrics.add_metric(name=telemetry.ASYNC_POISON_MESSAGES, unit=MetricUnit.Count, value=1)
    queue.logger.error(
        "poison dead letter set aside (deleted): not a job message",
        extra={
            "message_id": record.message_id,
            "error": str(problem),
            "attributes": record.get("attributes"),
            "md5_of_body": record.get("md5OfBody"),
            "body_chars": len(record.body),
            "kept_at": f"s3://{queue.config.artifacts_bucket}/{key}",
        },
    )


lambda_handler = queue.handler(answer_record)
