"""POST /feedback: ground truth for served rows, stored for the monitor's live metric and for retraining."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from functions.adapters import factory
from functions.core.feedback import FeedbackRequest, FeedbackResponse, FeedbackStore, record_feedback
from functions.inference.schemas import ErrorBody

FEEDBACK_PATH = "/feedback"
FEEDBACK_ITEMS = "FeedbackItems"
JSON = content_types.APPLICATION_JSON


def register(
    app: APIGatewayRestResolver,
    *,
    metrics: Metrics,
    bucket: str,
    store: FeedbackStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Add POST /feedback to `app`; feedback is stored in `bucket` (or `store`)."""
    feedback_store: Any = store or factory.monitoring_store(bucket)

    @app.post(
        FEEDBACK_PATH,
        summary="Send the true labels (or values) of served rows",
        responses={
            200: {"description": "Stored", "content": {JSON: {"model": FeedbackResponse}}},
            422: {"description": "Malformed feedback", "content": {JSON: {"model": ErrorBody}}},
        },
    )
    def feedback(request: Annotated[FeedbackRequest, Body()]) -> Response[str]:
        answer = record_feedback(request, store=feedback_store, now=clock())
        metrics.add_metric(name=FEEDBACK_ITEMS, unit=MetricUnit.Count, value=answer.accepted)
        return Response(status_code=200, content_type=JSON, body=answer.model_dump_json())
