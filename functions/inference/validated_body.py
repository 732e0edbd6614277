"""A route's body, validated by its pydantic model by the route itself instead of by the resolver.

Powertools' OpenAPI validation inspects every parameter kind of the route (path, query,
headers, cookies, body) on every request, as much time as scoring a row (`make bench`), and
its middlewares, parameter models and encoders add to the cold start. By the time a route
runs, the body is JSON text (functions.inference.request_body), so what is left to do is
parse it and validate it with the route's model.

`validated_body(router, model)` decorates a route whose first parameter is its body: the
resolver calls the route with the path's parameters, as it calls every route, and the
decorator adds the body. The signature the resolver reads (Python's `__signature__`, which
`inspect.signature` honours) names `model` as that parameter's type, so Powertools' OpenAPI
document describes `model` as the request body: a deployment's own model (its row limit)
where the route is typed with the model's base class. Errors are raised as the resolver's
own RequestValidationError, so they are answered like every other validation error.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from functions.inference.schemas import parse_json

Model = TypeVar("Model", bound=BaseModel)
Route = Callable[..., Response[str]]


def validated_body(router: Router, model: type[BaseModel]) -> Callable[[Route], Route]:
    """Decorate a route of `router` whose first parameter is its body: called with the body validated by `model`.

    Use it on a route of a resolver without OpenAPI validation (`enable_validation` left False).
    """

    def decorate(route: Route) -> Route:
        signature = inspect.signature(route, eval_str=True)
        body, *others = signature.parameters.values()

        @functools.wraps(route)
        def with_body(**path_parameters: Any) -> Response[str]:
            return route(parse_body(router.current_event.body, model), **path_parameters)

        with_body.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[body.replace(annotation=model), *others]
        )
        return with_body

    return decorate


def parse_body(body: str | None, model: type[Model]) -> Model:
    """`body` (JSON text) validated by `model`; RequestValidationError as the resolver's validation raises it."""
    if not body:  # as the resolver answers a route whose body is required
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        payload = parse_json(body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=body) from exc
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=payload) from exc
