"""POST /predict: score rows with the live model (or a rollout's candidate), count and capture the answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.core.errors import ServiceUnavailable
from functions.core.features import split_row_keys
from functions.core.rollout import STICKY_HEADER
from functions.inference import service
from functions.inference.caller import caller_of
from functions.inference.dependencies import RouteDependencies, request_config
from functions.inference.live_model import LiveModel
from functions.inference.metrics import record_answer
from functions.inference.schemas import BODY_ERRORS, PredictRequest, PredictResponse, dump_json, route_responses
from functions.inference.service import Outcome
from functions.inference.validated_body import validated_body

PREDICT_PATH = "/predict"
JSON = content_types.APPLICATION_JSON


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """POST /predict, answered with `deps`' live model, counted on its metrics and captured."""
    predict_router = APIGatewayRouter()

    @predict_router.post(
        PREDICT_PATH,
        summary="Score rows with the live model",
        description=(
            "The rows come as application/json, in one of four shapes: `instances` (a list of objects), "
            "`dataframe_records` (the same, as MLflow and pandas' to_dict(orient='records') name it), "
            "`dataframe_split` (`columns` and one list of values per row, pandas' to_dict(orient='split')) or "
            "MLflow's `inputs` (a dict of columns, or a list of rows: objects, or lists of values in GET /model's "
            "feature order); or as "
            "text/csv with a header row (empty is missing, numbers are numbers). Every shape meets the same "
            "validation, canonicalisation and row limit, and identical rows get identical answers."
        ),
        responses=route_responses(200, "One prediction per instance", PredictResponse, *BODY_ERRORS, 503),
    )
    @validated_body(predict_router, deps.request_model)
    def predict(request: PredictRequest) -> Response[str]:
        # The body is PredictResponse, serialised directly: validating a response we just
        # built would cost more than scoring 1,000 rows (tests check it against the model).
        outcome, request_id = score(predict_router, deps, request.rows_in(feature_names(deps.live_model)))
        body = {"model_version": outcome.version, "predictions": outcome.predictions}
        # The id to send ground truth for these rows with (POST /feedback).
        headers = {"X-Request-Id": request_id}
        return Response(status_code=200, content_type=JSON, body=dump_json(body), headers=headers)

    return predict_router


def feature_names(live_model: LiveModel) -> Callable[[], list[str]]:
    """The live model's features in order (what rows sent as bare lists of values are read by); 503 without one."""

    def names() -> list[str]:
        predictor = live_model.current().predictor
        if predictor is None:
            raise ServiceUnavailable("no live model is loaded to name the values of rows sent as lists: send objects")
        return predictor.manifest.feature_spec.names

    return names


def score(
    router: APIGatewayRouter, deps: RouteDependencies, rows: list[dict[str, Any]], *, version: str | None = None
) -> tuple[Outcome, str]:
    """Score the rows of the current request of `router` with the live model (or a rollout's candidate), count
    and capture the answer: every route that scores rows answers through here. Returns the outcome and the
    request's id. Raises InvalidRequest for rows the live model's feature spec refuses. With `version`, that
    served version alone answers (service.predict_version).
    """
    started = time.perf_counter()
    serving = deps.live_model.current()
    scored, keys = split_row_keys(rows, request_config(router).row_key)
    event = router.current_event
    caller = caller_of(event.raw_event.get("requestContext"))
    sticky = event.headers.get(STICKY_HEADER)
    # A sticky key is the caller's own: the same header value from two callers lands each on its own side.
    if version is None:
        outcome = service.predict(serving, scored, key=f"{caller}|{sticky}" if sticky and caller else sticky)
    else:
        outcome = service.predict_version(serving, scored, version)
    rollout = serving.candidate is not None
    elapsed_ms = record_answer(deps.metrics, deps.logger, outcome, started, rollout=rollout)
    # The answer's own time, so that a shadow's compares like with like (the handler's includes the shadow's).
    latency_ms = elapsed_ms - outcome.shadow.latency_ms if outcome.shadow is not None else elapsed_ms
    request_id = event.request_context.request_id
    deps.capture.record(
        request_id=request_id,
        manifest=outcome.predictor.manifest if outcome.predictor else None,
        model_version=outcome.version,
        rows=scored,
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
    return outcome, request_id
