"""A route's body, validated by its pydantic model in a route middleware instead of by the resolver.

Powertools' OpenAPI validation inspects every parameter kind of the route (path, query,
headers, cookies, body) on every request: about 0.05 ms of a one-row /predict (`make bench`),
as much as scoring the row. Its middlewares, parameter models and encoders take 0.06 s to
import on their own, about 5 ms of this handler's cold start (its own pydantic models import
most of the same modules). By the time a route runs, the body is JSON text
(functions.inference.request_body), so what is left to do is parse it and validate it with
the route's model: this middleware does that and hands the model to the route as the
argument named `request`. The route's signature names the model (`request: Model`), which
Powertools' OpenAPI document describes as the request body; errors are raised as the
resolver's own RequestValidationError, so they are answered like every other validation error.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from functions.inference.schemas import parse_json

Middleware = Callable[[APIGatewayRestResolver, NextMiddleware], Response[str]]
ARGUMENT = "request"


def validated_body(model: type[BaseModel]) -> Middleware:
    """A route middleware passing the body, validated by `model`, as the route's `request` argument.

    Use it on a route of a resolver without OpenAPI validation (`enable_validation` left False).
    """

    def middleware(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
        body = app.current_event.body
        if not body:  # as the resolver answers a route whose body is required
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        try:
            payload = parse_json(body)
        except json.JSONDecodeError as exc:
            error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
            raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=body) from exc
        try:
            request = model.model_validate(payload)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors, body=payload) from exc
        app.append_context(_route_args={**app.context.get("_route_args", {}), ARGUMENT: request})
        return next_middleware(app)

    return middleware
