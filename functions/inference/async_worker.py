"""The async worker Lambda: scores jobs from the requests queue, reporting partial batch failures.

A failed record returns to the queue (and, after the redrive policy's receives,
goes to the dead-letter queue); the records that succeeded are not retried. A
record whose body is not a job message fails too (logged with its message id):
the dead-letter fallback is the one place that decides what becomes of it.
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
from functions.core.errors import MalformedEvent, ModelUnavailable
from functions.core.event_input import SqsEvent, parse_event, parse_json
from functions.core.jobs import JobMessage
from functions.core.predictor import REASON_MODEL_UNAVAILABLE, REASON_REGISTRY_UNREACHABLE
from functions.inference import async_jobs
from functions.inference.config import WorkerConfig
from functions.inference.live_model import live_model_of

TRANSIENT_REASONS = (REASON_MODEL_UNAVAILABLE, REASON_REGISTRY_UNREACHABLE)

config = WorkerConfig.from_environ()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
store = factory.job_store(config.artifacts_bucket)
live_model = live_model_of(config)


@tracer.capture_method(capture_response=False)
def score_record(record: SQSRecord) -> str:
    """Score the job a record names and store its result (a duplicate finds the stored one)."""
    try:
        message = parse_json(JobMessage, record.body)
    except MalformedEvent as exc:
        logger.warning("poison message: not a job message", extra={"message_id": record.message_id, "error": str(exc)})
        raise
    serving = live_model.current()
    if serving.predictor is None and serving.reason in TRANSIENT_REASONS:
        # A bundle or pointer that could not be read just now: retry the record rather than store
        # plan B as the job's one answer; after the redrive policy's receives, the fallback answers.
        raise ModelUnavailable(f"no model loaded ({serving.reason}); the record returns to the queue")
    result = async_jobs.process(message, serving, store=store)
    rows = len(result.predictions)
    metrics.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows if result.reason else 0)
    logger.info("job answered", extra={"job_id": result.job_id, "status": result.status, "rows": rows})
    return result.job_id


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    parse_event(SqsEvent, event)  # anything but an SQS event is refused whole (MalformedEvent)
    return process_partial_response(event=event, record_handler=score_record, processor=processor, context=context)
