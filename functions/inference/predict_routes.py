"""POST /predict: score rows with the live model (or a rollout's candidate), count and capture the answer."""

from __future__ import annotations

import time

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.core.features import split_row_keys
from functions.core.rollout import STICKY_HEADER
from functions.inference import service
from functions.inference.caller import caller_of
from functions.inference.dependencies import RouteDependencies, request_config
from functions.inference.metrics import record_answer
from functions.inference.schemas import ErrorBody, PredictRequest, PredictResponse, dump_json
from functions.inference.validated_body import validated_body

PREDICT_PATH = "/predict"
JSON = content_types.APPLICATION_JSON


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """POST /predict, answered with `deps`' live model, counted on its metrics and captured."""
    predict_router = APIGatewayRouter()
    live_model, capture = deps.live_model, deps.capture

    @predict_router.post(
        PREDICT_PATH,
        summary="Score rows with the live model",
        description=(
            "The rows come as application/json, in one of three shapes: `instances` (a list of objects), "
            "`dataframe_records` (the same, as MLflow and pandas' to_dict(orient='records') name it) or "
            "`dataframe_split` (`columns` and one list of values per row, pandas' to_dict(orient='split')); or as "
            "text/csv with a header row (empty is missing, numbers are numbers). Every shape meets the same "
            "validation, canonicalisation and row limit, and identical rows get identical answers."
        ),
        responses={
            200: {"description": "One prediction per instance", "content": {JSON: {"model": PredictResponse}}},
            422: {"description": "Instances that break the feature spec", "content": {JSON: {"model": ErrorBody}}},
        },
    )
    @validated_body(predict_router, deps.request_model)
    def predict(request: PredictRequest) -> Response[str]:
        # The body is PredictResponse, serialised directly: validating a response we just
        # built would cost more than scoring 1,000 rows (tests check it against the model).
        started = time.perf_counter()
        serving = live_model.current()
        rows, keys = split_row_keys(request.rows, request_config(predict_router).row_key)
        event = predict_router.current_event
        caller = caller_of(event.raw_event.get("requestContext"))
        sticky = event.headers.get(STICKY_HEADER)
        # A sticky key is the caller's own: the same header value from two callers lands each on its own side.
        outcome = service.predict(serving, rows, key=f"{caller}|{sticky}" if sticky and caller else sticky)
        rollout = serving.candidate is not None
        elapsed_ms = record_answer(deps.metrics, deps.logger, outcome, started, rollout=rollout)
        # The answer's own time, so that a shadow's compares like with like (the handler's includes the shadow's).
        latency_ms = elapsed_ms - outcome.shadow.latency_ms if outcome.shadow is not None else elapsed_ms
        request_id = event.request_context.request_id
        capture.record(
            request_id=request_id,
            manifest=outcome.predictor.manifest if outcome.predictor else None,
            model_version=outcome.version,
            rows=rows,
            batch=outcome.batch,
            predictions=outcome.predictions,
            keys=keys,
            caller=caller,
            role=outcome.role,
            latency_ms=latency_ms,
            shadow=outcome.shadow,
            candidate_error=outcome.candidate_error,
            always=rollout,
        )
        body = {"model_version": outcome.version, "predictions": outcome.predictions}
        # The id to send ground truth for these rows with (POST /feedback).
        headers = {"X-Request-Id": request_id}
        return Response(status_code=200, content_type=JSON, body=dump_json(body), headers=headers)

    return predict_router
