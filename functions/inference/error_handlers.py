"""Every error the inference function answers, as an HTTP status and an `ErrorBody` naming the field and the rule.

The exception handlers are a router's (joined to the resolver with `include_router`, as the
routes are); `refusal` answers a request refused before routing the same way.
"""

from __future__ import annotations

from math import ceil
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import FieldError, InvalidRequest, ServiceUnavailable
from functions.inference.dependencies import RouteDependencies, request_config
from functions.inference.metrics import count_invalid_request
from functions.inference.predict_routes import PREDICT_PATH
from functions.inference.schemas import ErrorBody, InferenceErrorBody
from functions.inference.v2_routes import is_infer_path, is_v2_path

JSON = content_types.APPLICATION_JSON


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """The exception handlers: bad input (counted on `deps`' metrics for /predict), 404, 503."""
    errors_router = APIGatewayRouter()
    metrics, logger = deps.metrics, deps.logger

    @errors_router.exception_handler(InvalidRequest)
    def invalid_request(exc: InvalidRequest) -> Response[str]:
        path = errors_router.current_event.path
        _count_invalid(metrics, path)
        return _error(path, exc.status, exc.message, [error.as_dict() for error in exc.errors])

    @errors_router.exception_handler(ServiceUnavailable)
    def service_unavailable(exc: ServiceUnavailable) -> Response[str]:
        response = _error(errors_router.current_event.path, 503, str(exc), [])
        # A model the pointer names is loaded at the next refresh at the latest.
        response.headers["Retry-After"] = str(ceil(request_config(errors_router).pointer_refresh_seconds))
        return response

    @errors_router.exception_handler([BotoCoreError, ClientError])
    def dependency_unavailable(exc: BotoCoreError | ClientError) -> Response[str]:
        # S3 or SQS failed under a route that stores something (/predict/async, /feedback): nothing was
        # accepted, so the client may retry. /predict never gets here: its model is loaded from memory.
        path = errors_router.current_event.path
        logger.error("a dependency failed; answered 503", extra={"path": path, "error": str(exc)})
        response = _error(path, 503, "a storage dependency is unavailable; nothing was stored, retry shortly", [])
        response.headers["Retry-After"] = "1"
        return response

    @errors_router.exception_handler(NotFoundError)
    def not_found(exc: NotFoundError) -> Response[str]:
        event = errors_router.current_event
        route = f"{event.http_method} {event.path}"[:200]
        message = f"no route {route!r}: GET /openapi.json lists the routes and their methods"
        return _error(event.path, 404, message, [FieldError(("path",), "not_found", "no such route").as_dict()])

    @errors_router.exception_handler([RequestValidationError, RequestUnsupportedContentType])
    def invalid_body(exc: RequestValidationError | RequestUnsupportedContentType) -> Response[str]:
        path = errors_router.current_event.path
        _count_invalid(metrics, path)
        errors = [_describe(error) for error in exc.errors()]
        types = {error["type"] for error in errors}
        status = 415 if "unsupported_content_type" in types else 400 if "json_invalid" in types else 422
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
        return _error(path, status, f"invalid request body: {summary}", errors)

    return errors_router


def refusal(request: BaseProxyEvent, exc: InvalidRequest, deps: RouteDependencies) -> dict[str, Any]:
    """The response for a request refused before routing (counted for the scoring routes), in the event's format."""
    _count_invalid(deps.metrics, request.path)
    response = _error(request.path, exc.status, exc.message, [error.as_dict() for error in exc.errors])
    headers = {"Content-Type": JSON}
    return {"statusCode": exc.status, "headers": headers, "body": response.body, "isBase64Encoded": False}


def _count_invalid(metrics: Metrics, path: str) -> None:
    # Counted for the scoring routes only, so that InvalidRequests / PredictRequests is a rate.
    if path == PREDICT_PATH or is_infer_path(path):
        count_invalid_request(metrics)


def _error(path: str, status: int, message: str, errors: list[dict[str, Any]]) -> Response[str]:
    """An `ErrorBody`, or on the Open Inference Protocol's routes the protocol's `{"error": ...}`."""
    if is_v2_path(path):
        body = InferenceErrorBody(error=message).model_dump_json()
    else:
        body = ErrorBody(message=message, errors=errors).model_dump_json()
    return Response(status_code=status, content_type=JSON, body=body)


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    loc = [part for part in error.get("loc", ()) if part != "body"] or ["body"]
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        msg = f"malformed JSON at character {loc[-1]}: {error.get('ctx', {}).get('error', 'decode error')}"
        loc = ["body"]
    return FieldError(tuple(loc), str(error.get("type", "invalid")), msg).as_dict()
