"""POST /feedback: ground truth for served rows, stored for the monitor's live metric and for retraining."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from functions.adapters import factory
from functions.core.feedback import FeedbackItem, FeedbackRequest, FeedbackResponse, deduplicate
from functions.inference.schemas import ErrorBody

FEEDBACK_PATH = "/feedback"
FEEDBACK_ITEMS = "FeedbackItems"
JSON = content_types.APPLICATION_JSON
# How far back a request id is looked up in the capture when feedback arrives.
LOOKUP_HOURS = 48


class FeedbackStore(Protocol):
    def put_feedback(self, items: list[FeedbackItem], received: datetime) -> str: ...
    def captured_request_ids(self, start: datetime, end: datetime) -> set[str]: ...


def record_feedback(
    request: FeedbackRequest, *, store: FeedbackStore, now: datetime, lookup: timedelta = timedelta(hours=LOOKUP_HOURS)
) -> FeedbackResponse:
    """Store the batch (first of each (request_id, row) kept); name the ids not captured (yet)."""
    kept, duplicates = deduplicate(request.items)
    store.put_feedback(kept, now)
    captured = store.captured_request_ids(now - lookup, now + timedelta(hours=1))
    unknown = sorted({item.request_id for item in kept} - captured)
    return FeedbackResponse(accepted=len(kept), duplicates=duplicates, unknown=unknown)


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
