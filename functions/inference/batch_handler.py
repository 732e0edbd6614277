"""The batch scoring Lambdas: `plan_handler` (the delta, as a manifest) and `score_handler` (one object).

The state machine runs plan, then a Distributed Map over the manifest whose
item processor invokes `score_handler` once per object.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.adapters import factory
from functions.core import batch
from functions.core.batch import BatchItem
from functions.core.event_input import parse_event
from functions.inference import batch_service
from functions.inference.config import WorkerConfig
from functions.inference.live_model import live_model_of

BATCH_ROWS_SCORED = "BatchRowsScored"
BATCH_ROWS_REFUSED = "BatchRowsRefused"

config = WorkerConfig.from_environ()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
store = factory.batch_store(config.artifacts_bucket)
live_model = live_model_of(config)


class PlanRequest(BaseModel):
    """The state machine's input."""

    model_config = ConfigDict(extra="ignore")

    input_prefix: str
    output_prefix: str
    run_id: str = Field(min_length=1)

    @model_validator(mode="after")
    def _prefixes_in_bounds(self) -> PlanRequest:
        batch.check_prefixes(self.input_prefix, self.output_prefix)
        return self


# Each handler refuses an input that is not its model with MalformedEvent, which the state machine
# never retries (stage/workflows/batch.py): the same input would fail the same way every time.
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(PlanRequest, event)
    plan = batch_service.plan(
        store, input_prefix=request.input_prefix, output_prefix=request.output_prefix, run_id=request.run_id
    )
    logger.info("batch planned", extra={"run_id": plan.run_id, "objects": plan.count, "unchanged": plan.unchanged})
    return {"manifest_key": plan.manifest_key, "count": plan.count, "unchanged": plan.unchanged}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def score_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    entry = batch_service.score_object(store, parse_event(BatchItem, event), live_model.current())
    metrics.add_metric(name=BATCH_ROWS_SCORED, unit=MetricUnit.Count, value=entry.rows)
    metrics.add_metric(name=BATCH_ROWS_REFUSED, unit=MetricUnit.Count, value=entry.errors)
    return entry.model_dump(mode="json")
