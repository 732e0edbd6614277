"""POST /predict/async and GET /predict/async/{job_id}: rows queued for scoring, and the job's answer.

The body is the /predict body, validated by the same model and the same feature
spec before anything is stored, so bad input gets exactly the /predict 4xx and
is never queued.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, Field

from functions.core.errors import FieldError, InvalidRequest, ServiceUnavailable
from functions.core.jobs import JOB_ID_PATTERN
from functions.inference import async_jobs
from functions.inference.caller import caller_of
from functions.inference.dependencies import RouteDependencies
from functions.inference.predict_routes import feature_names
from functions.inference.schemas import BODY_ERRORS, PredictionOut, PredictRequest, dump_json, route_responses
from functions.inference.validated_body import validated_body

ASYNC_PATH = "/predict/async"
JSON = content_types.APPLICATION_JSON
ASYNC_JOBS_SUBMITTED = "AsyncJobsSubmitted"
_JOB_ID = re.compile(JOB_ID_PATTERN)


class JobAccepted(BaseModel):
    job_id: str = Field(description="Poll GET /predict/async/{job_id} with it.")


class JobStatusOut(BaseModel):
    job_id: str
    status: Literal["pending", "done", "fallback"] = Field(
        description="pending: queued or being scored; done: scored by the model; fallback: plan B answered."
    )
    model_version: str | None = None
    predictions: list[PredictionOut] | None = None
    reason: str | None = Field(None, description="Why plan B answered (status fallback).")


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """POST /predict/async and GET /predict/async/{job_id}, storing and queueing jobs with `deps`."""
    async_router = APIGatewayRouter()
    live_model, metrics, store, queue = deps.live_model, deps.metrics, deps.jobs, deps.queue

    @async_router.post(
        ASYNC_PATH,
        summary="Queue rows for scoring; answers 202 with a job id",
        responses=route_responses(202, "Accepted", JobAccepted, *BODY_ERRORS, 503),
    )
    @validated_body(async_router, deps.request_model)
    def submit(request: PredictRequest) -> Response[str]:
        if queue is None:
            raise ServiceUnavailable("async predictions are not configured on this deployment")
        caller = caller_of(async_router.current_event.raw_event.get("requestContext"))
        job_id = async_jobs.submit(
            live_model.current(), request.rows_in(feature_names(live_model)), store=store, queue=queue, caller=caller
        )
        metrics.add_metric(name=ASYNC_JOBS_SUBMITTED, unit=MetricUnit.Count, value=1)
        return Response(status_code=202, content_type=JSON, body=JobAccepted(job_id=job_id).model_dump_json())

    @async_router.get(
        f"{ASYNC_PATH}/<job_id>",
        summary="A job's state: pending, done (predictions, model version) or fallback (reason); 404 if unknown",
        responses=route_responses(200, "The job", JobStatusOut, 404, 503),
    )
    def job(job_id: str) -> Response[str]:
        try:
            if not _JOB_ID.match(job_id):
                raise async_jobs.JobNotFound(job_id)
            caller = caller_of(async_router.current_event.raw_event.get("requestContext"))
            state = async_jobs.status(job_id, store=store, caller=caller)
        except async_jobs.JobNotFound:
            raise InvalidRequest(
                f"no async job {job_id!r}: ids come from POST {ASYNC_PATH}, and results expire",
                [FieldError(("path", "job_id"), "not_found", "unknown job id")],
                status=404,
            ) from None
        body: dict[str, Any] = {"job_id": job_id, "status": state.status}
        if state.result is not None:
            body |= {
                "model_version": state.result.model_version,
                "predictions": state.result.predictions,
                "reason": state.result.reason,
            }
        return Response(status_code=200, content_type=JSON, body=dump_json(body))

    return async_router
