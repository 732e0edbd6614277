"""POST /feedback: ground truth for served rows, stored for the monitor's live metric and for retraining."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.metrics import MetricUnit

from functions.core.feedback import FeedbackRequest, FeedbackResponse, record_feedback
from functions.inference.caller import caller_of
from functions.inference.dependencies import RouteDependencies
from functions.inference.schemas import BODY_ERRORS, route_responses
from functions.inference.validated_body import validated_body

FEEDBACK_PATH = "/feedback"
FEEDBACK_ITEMS = "FeedbackItems"
JSON = content_types.APPLICATION_JSON


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """POST /feedback, stored in `deps`' feedback store and checked against its live model."""
    feedback_router = APIGatewayRouter()

    @feedback_router.post(
        FEEDBACK_PATH,
        summary="Send the true labels (or values) of served rows, by request id and row or by row key",
        responses=route_responses(
            202, "Stored; joined to its rows by the monitor", FeedbackResponse, *BODY_ERRORS, 503
        ),
    )
    @validated_body(feedback_router, FeedbackRequest)
    def feedback(request: FeedbackRequest) -> Response[str]:
        predictor = deps.live_model.current().predictor
        manifest = predictor.manifest if predictor is not None else None
        answer = record_feedback(
            request, store=deps.feedback, now=deps.clock(),
            task=manifest.task if manifest else None, classes=manifest.classes if manifest else None,
            caller=caller_of(feedback_router.current_event.raw_event.get("requestContext")),
        )  # fmt: skip
        deps.metrics.add_metric(name=FEEDBACK_ITEMS, unit=MetricUnit.Count, value=answer.accepted)
        return Response(status_code=202, content_type=JSON, body=answer.model_dump_json(exclude_none=True))

    return feedback_router
