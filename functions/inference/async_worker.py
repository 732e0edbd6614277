"""The async worker Lambda: scores jobs from the requests queue, reporting partial batch failures.

A failed record returns to the queue (and, after the redrive policy's receives,
goes to the dead-letter queue); the records that succeeded are not retried. A
record whose body is not a job message fails too (logged with its message id):
the dead-letter fallback is the one place that decides what becomes of it.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.core import telemetry
from functions.core.errors import MalformedEvent, ModelUnavailable
from functions.core.event_input import parse_json
from functions.core.jobs import JobMessage
from functions.core.predictor import REASON_MODEL_UNAVAILABLE, REASON_REGISTRY_UNREACHABLE
from functions.inference import async_jobs
from functions.inference.live_model import live_model_of
from functions.inference.queue_function import QueueFunction

TRANSIENT_REASONS = (REASON_MODEL_UNAVAILABLE, REASON_REGISTRY_UNREACHABLE)

queue = QueueFunction()
live_model = live_model_of(queue.config)


@queue.tracer.capture_method(capture_response=False)
def score_record(record: SQSRecord) -> str:
    """Score the job a record names and store its result (a duplicate finds the stored one)."""
    try:
        message = parse_json(JobMessage, record.body)
    except MalformedEvent as exc:
        queue.logger.warning(
            "poison message: not a job message", extra={"message_id": record.message_id, "error": str(exc)}
        )
        raise
    serving = live_model.current()
    if serving.predictor is None and serving.reason in TRANSIENT_REASONS:
        # A bundle or pointer that could not be read just now: retry the record rather than store
        # plan B as the job's one answer; after the redrive policy's receives, the fallback answers.
        raise ModelUnavailable(f"no model loaded ({serving.reason}); the record returns to the queue")
    result = async_jobs.process(message, serving, store=queue.store)
    rows = len(result.predictions)
    queue.metrics.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    queue.metrics.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows if result.reason else 0)
    queue.logger.info("job answered", extra={"job_id": result.job_id, "status": result.status, "rows": rows})
    return result.job_id


lambda_handler = queue.handler(score_record)
