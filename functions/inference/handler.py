"""The inference Lambda: /predict, /model, /health and /openapi.json behind API Gateway (REST).

Built once per cold start: configuration, Powertools, the resolver and the
live model. Each route parses its input, calls one domain function and
returns a pydantic model; errors become HTTP answers in one place.
"""

# ruff: noqa: E402  (the collector is paused before the first import)
from __future__ import annotations

import gc

# No collection while the container initialises: imports and the model load allocate
# hundreds of thousands of objects that all live as long as the container, so scanning
# them is wasted (about 40 ms of a cold start). Frozen and resumed at the end of this module.
gc.disable()

import time
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from functions.core import telemetry
from functions.core.errors import FieldError, InvalidRequest, ServiceUnavailable
from functions.core.features import FeatureSpec, split_row_keys
from functions.core.rollout import STICKY_HEADER
from functions.inference import async_routes, feedback_routes, request_body, service, snap_start
from functions.inference.caller import caller_of
from functions.inference.capture import Capture
from functions.inference.config import InferenceConfig
from functions.inference.dependencies import route_dependencies
from functions.inference.live_model import Serving, live_model_of
from functions.inference.schemas import (
    CandidateInfo,
    ErrorBody,
    Health,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    dump_json,
    parse_json,
    predict_request_model,
)
from functions.inference.validated_body import validated_body

# /model, /health and /openapi.json publish no metric; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

config = InferenceConfig.from_environ()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
# No resolver-wide OpenAPI validation: it inspects every parameter kind of a route on every request
# (about 0.05 ms of a one-row /predict) and its middlewares are imported at init. Bodies are validated
# by their pydantic models (validated_body); the OpenAPI document is built from the signatures on demand.
app = APIGatewayRestResolver(json_body_deserializer=parse_json, serializer=dump_json)
live_model = live_model_of(config, load_candidate=True)
if TYPE_CHECKING:
    PredictBody = PredictRequest
else:  # the deployment's row limit, which validated_body checks and the OpenAPI document shows
    PredictBody = predict_request_model(config.max_instances)

# Each route module adds its routes with `register(app, deps)`, before the freeze at the end.
deps = route_dependencies(config, metrics=metrics, live_model=live_model, request_model=PredictBody)
async_routes.register(app, deps)
feedback_routes.register(app, deps)
capture = Capture(sampling_rate=config.capture_sampling_rate)

OPENAPI_TITLE = "Slipway inference API"
JSON = content_types.APPLICATION_JSON
PREDICT_PATH = "/predict"
DOCS_PATH = "/docs"
# The routes that take rows, in JSON or as a CSV body.
ROW_PATHS = frozenset({PREDICT_PATH, async_routes.ASYNC_PATH})


@app.post(
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
    middlewares=[validated_body(PredictBody)],
)
def predict(request: PredictBody) -> Response[str]:
    # The body is PredictResponse, serialised directly: validating a response we just
    # built would cost more than scoring 1,000 rows (tests check it against the model).
    started = time.perf_counter()
    serving = live_model.current()
    rows, keys = split_row_keys(request.rows, config.row_key)
    caller = caller_of(app.current_event.raw_event.get("requestContext"))
    sticky = app.current_event.headers.get(STICKY_HEADER)
    # A sticky key is the caller's own: the same header value from two callers lands each on its own side.
    outcome = service.predict(serving, rows, key=f"{caller}|{sticky}" if sticky and caller else sticky)
    elapsed_ms = _record(outcome, started, rollout=serving.candidate is not None)
    # The answer's own time, so that a shadow's compares like with like (the handler's includes the shadow's).
    latency_ms = elapsed_ms - outcome.shadow.latency_ms if outcome.shadow is not None else elapsed_ms
    request_id = app.current_event.request_context.request_id
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
        always=serving.candidate is not None,
    )
    body = {"model_version": outcome.version, "predictions": outcome.predictions}
    # The id to send ground truth for these rows with (POST /feedback).
    headers = {"X-Request-Id": request_id}
    return Response(status_code=200, content_type=JSON, body=dump_json(body), headers=headers)


def _record(outcome: service.Outcome, started: float, *, rollout: bool) -> float:
    """Count the answer; the scoring latency in milliseconds."""
    rows = len(outcome.predictions)
    metrics.add_metadata(key="model_version", value=outcome.version or "none")
    metrics.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    # The rows' counts are published when not zero, as InvalidRequests always was: to every alarm on
    # them a missing datapoint is a zero (rates over Predictions, missing data not breaching), and the
    # five zeros a normal answer would add cost 0.02 ms of a 0.2 ms request (Powertools' add_metric).
    counts = (
        (telemetry.IMPUTATIONS, outcome.imputations),
        (telemetry.OUT_OF_RANGE, outcome.out_of_range),
        (telemetry.OUTLIERS, outcome.outliers),
        (telemetry.FALLBACKS, rows if outcome.fallback_reason else 0),
        (telemetry.LAST_GOOD_ANSWERS, rows if outcome.stale else 0),
    )
    for name, count in counts:
        if count:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if outcome.fallback_reason:
        # A separate EMF document, so the reason dimension does not split the alarms' metrics.
        with single_metric(
            name=telemetry.FALLBACKS_BY_REASON, unit=MetricUnit.Count, value=rows, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name=telemetry.SERVICE_DIMENSION, value=metrics.service or "")
            metric.add_dimension(name=telemetry.REASON_DIMENSION, value=outcome.fallback_reason)
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.add_metric(name=telemetry.SCORING_LATENCY, unit=MetricUnit.Milliseconds, value=elapsed_ms)
    if rollout:
        _record_rollout(outcome, rows, elapsed_ms)
    return elapsed_ms


def _record_rollout(outcome: service.Outcome, rows: int, elapsed_ms: float) -> None:
    """During a rollout, the answer's figures by role (live or candidate: two values, whatever the versions)."""
    # Its own EMF document (EphemeralMetrics shares nothing with `metrics`), so the alarms' set keeps one dimension.
    by_role = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    by_role.add_dimension(name=telemetry.MODEL_ROLE_DIMENSION, value=outcome.role)
    by_role.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    by_role.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows if outcome.fallback_reason else 0)
    by_role.add_metric(name=telemetry.SCORING_LATENCY, unit=MetricUnit.Milliseconds, value=elapsed_ms)
    by_role.add_metric(name=telemetry.CANDIDATE_ERRORS, unit=MetricUnit.Count, value=int(bool(outcome.candidate_error)))
    shadow = outcome.shadow
    if shadow is not None:
        by_role.add_metric(name=telemetry.SHADOW_LATENCY, unit=MetricUnit.Milliseconds, value=shadow.latency_ms)
        by_role.add_metric(name=telemetry.SHADOW_ERRORS, unit=MetricUnit.Count, value=int(shadow.error is not None))
    by_role.add_metadata(key="model_version", value=outcome.version or "none")
    by_role.flush_metrics()
    if outcome.candidate_error or (shadow is not None and shadow.error):
        logger.warning(
            "the rollout's candidate could not score a request; the live model answered",
            extra={"error": outcome.candidate_error or (shadow.error if shadow else None)},
        )


@app.get("/model", summary="The live model: version, task, classes, feature spec, holdout metrics")
def model_info() -> ModelInfo:
    serving = live_model.current()
    if serving.predictor is None:
        raise ServiceUnavailable(f"no live model is loaded ({serving.reason})")
    manifest = serving.predictor.manifest
    return ModelInfo(
        version=manifest.version,
        task=manifest.task,
        classes=list(manifest.classes) if manifest.classes else None,
        metric=manifest.metric,
        metrics=manifest.metrics,
        parity=manifest.parity,
        feature_spec=manifest.feature_spec,
        candidate=_candidate_info(serving),
    )


@app.get("/health", summary="ready, or degraded with the reason")
def health() -> Health:
    serving = live_model.current()
    if serving.predictor is None:
        return Health(status="degraded", model_version=serving.version, reason=serving.reason)
    candidate = _candidate_info(serving)
    if serving.stale is not None:
        return Health(status="degraded", model_version=serving.version, reason=serving.stale, candidate=candidate)
    return Health(status="ready", model_version=serving.version, reason=None, candidate=candidate)


def _candidate_info(serving: Serving) -> CandidateInfo | None:
    rollout = live_model.rollout()
    if rollout is None:
        return None
    loaded = serving.candidate.predictor.manifest if serving.candidate is not None else None
    return CandidateInfo(
        version=rollout.candidate,
        mode=rollout.mode,
        percent=rollout.percent,
        started_at=rollout.started_at,
        loaded=loaded is not None,
        reason=serving.candidate_problem,
        metric=loaded.metric if loaded else None,
        metrics=loaded.metrics if loaded else None,
    )


@app.get("/openapi.json", summary="This document", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type=JSON,
        body=app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1"),
    )


@cache
def _enable_docs() -> None:
    """Swagger UI for people, from the same document; its script and styles are served inline by Powertools
    (no third-party CDN). "Try it out" sends the API key a reader enters in the x-api-key header.

    Registered at the first request for it, not at import: Powertools' OpenAPI models, which it needs,
    take a cold start about 0.1 s to import.
    """
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    app.enable_swagger(
        path=DOCS_PATH,
        title=OPENAPI_TITLE,
        version="1",
        security_schemes={"apiKey": APIKey(name="x-api-key", **{"in": APIKeyIn.header})},
        security=[{"apiKey": []}],
    )


def _error(status: int, message: str, errors: list[dict[str, Any]]) -> Response[str]:
    body = ErrorBody(message=message, errors=errors).model_dump_json()
    return Response(status_code=status, content_type=JSON, body=body)


def _count_invalid(path: str) -> None:
    # Counted for /predict only, so that InvalidRequests / PredictRequests is a rate.
    if path == PREDICT_PATH:
        metrics.add_metric(name=telemetry.INVALID_REQUESTS, unit=MetricUnit.Count, value=1)


@app.exception_handler(InvalidRequest)
def invalid_request(exc: InvalidRequest) -> Response[str]:
    _count_invalid(app.current_event.path)
    return _error(exc.status, exc.message, [error.as_dict() for error in exc.errors])


@app.exception_handler(ServiceUnavailable)
def service_unavailable(exc: ServiceUnavailable) -> Response[str]:
    return _error(503, str(exc), [])


@app.exception_handler([BotoCoreError, ClientError])
def dependency_unavailable(exc: BotoCoreError | ClientError) -> Response[str]:
    # S3 or SQS failed under a route that stores something (/predict/async, /feedback): nothing was
    # accepted, so the client may retry. /predict never gets here: its model is loaded from memory.
    logger.error("a dependency failed; answered 503", extra={"path": app.current_event.path, "error": str(exc)})
    response = _error(503, "a storage dependency is unavailable; nothing was stored, retry shortly", [])
    response.headers["Retry-After"] = "1"
    return response


@app.not_found
def not_found(exc: NotFoundError) -> Response[str]:
    event = app.current_event
    route = f"{event.http_method} {event.path}"[:200]
    message = f"no route {route!r}: GET /openapi.json lists the routes and their methods"
    return _error(404, message, [FieldError(("path",), "not_found", "no such route").as_dict()])


@app.exception_handler([RequestValidationError, RequestUnsupportedContentType])
def invalid_body(exc: RequestValidationError | RequestUnsupportedContentType) -> Response[str]:
    _count_invalid(app.current_event.path)
    errors = [_describe(error) for error in exc.errors()]
    types = {error["type"] for error in errors}
    status = 415 if "unsupported_content_type" in types else 400 if "json_invalid" in types else 422
    summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
    return _error(status, f"invalid request body: {summary}", errors)


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    loc = [part for part in error.get("loc", ()) if part != "body"] or ["body"]
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        msg = f"malformed JSON at character {loc[-1]}: {error.get('ctx', {}).get('error', 'decode error')}"
        loc = ["body"]
    return FieldError(tuple(loc), str(error.get("type", "invalid")), msg).as_dict()


def _too_large(event: dict[str, Any]) -> InvalidRequest | None:
    """A 413 when the body is over the limit (checked before any parsing)."""
    body = event.get("body") or ""
    size = len(body) if event.get("isBase64Encoded") else len(body.encode(errors="surrogatepass"))
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    if size <= config.max_body_bytes:
        return None
    message = f"request body is {size} bytes; the limit is {config.max_body_bytes}"
    return InvalidRequest(message, [FieldError(("body",), "too_large", message)], status=413)


def _refusal(event: dict[str, Any], exc: InvalidRequest) -> dict[str, Any]:
    """The proxy response for a request refused before routing."""
    _count_invalid(event.get("path", ""))
    body = ErrorBody(message=exc.message, errors=[error.as_dict() for error in exc.errors])
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": JSON},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


def _live_spec() -> FeatureSpec | None:
    predictor = live_model.current().predictor
    return predictor.manifest.feature_spec if predictor is not None else None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    path = event.get("path")
    if path == PREDICT_PATH:
        metrics.add_metric(name=telemetry.PREDICT_REQUESTS, unit=MetricUnit.Count, value=1)
    elif path == DOCS_PATH:
        _enable_docs()
    # The one place where a body that cannot become JSON text gets its 4xx, before routing.
    try:
        refused = _too_large(event)
        if refused is not None:
            return _refusal(event, refused)
        event = request_body.normalised(event, csv_paths=ROW_PATHS, csv_spec=_live_spec)
    except InvalidRequest as exc:
        return _refusal(event, exc)
    return app.resolve(event, context)


# Load the live model during init (boosted CPU, and done before traffic under provisioned
# concurrency, or before the snapshot under SnapStart), then exempt everything built so far
# from garbage collection, so that the objects a 1,000-row request allocates never trigger
# a scan of the whole init-time heap.
live_model.current()
snap_start.register(live_model)
gc.freeze()
gc.enable()
