"""A route decorated with validated_body: called with its validated body, and described by the model it is given."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from functions.inference.validated_body import parse_body, validated_body
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event

CONTEXT: Any = FakeLambdaContext()


class Order(BaseModel):
    items: list[str] = Field(min_length=1)


class SmallOrder(Order):
    items: list[str] = Field(min_length=1, max_length=2)


def _app() -> tuple[APIGatewayRestResolver, list[Any]]:
    received: list[Any] = []
    router = APIGatewayRouter()

    @router.post("/orders/<shop>")
    @validated_body(router, SmallOrder)
    def order(request: Order, shop: str) -> Response[str]:
        received.append((request, shop))
        return Response(status_code=201, content_type="application/json", body="{}")

    app = APIGatewayRestResolver()
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    def invalid(exc: RequestValidationError) -> Response[str]:
        return Response(status_code=422, content_type="application/json", body=json.dumps(exc.errors(), default=str))

    return app, received


def test_the_route_gets_its_body_validated_by_the_given_model_and_its_path_parameters() -> None:
    app, received = _app()
    response = app.resolve(proxy_event(HttpRequest("POST", "/orders/north", body='{"items": ["a"]}')), CONTEXT)
    assert response["statusCode"] == 201
    [(request, shop)] = received
    assert type(request) is SmallOrder and request.items == ["a"] and shop == "north"


def test_a_body_the_given_model_refuses_never_reaches_the_route() -> None:
    app, received = _app()
    response = app.resolve(
        proxy_event(HttpRequest("POST", "/orders/north", body='{"items": ["a", "b", "c"]}')), CONTEXT
    )
    assert response["statusCode"] == 422 and received == []
    assert json.loads(response["body"])[0]["loc"] == ["body", "items"]


def test_the_openapi_document_describes_the_given_model_as_the_required_body() -> None:
    app, _ = _app()
    document = json.loads(app.get_openapi_json_schema())
    body = document["paths"]["/orders/{shop}"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/SmallOrder")
    assert document["components"]["schemas"]["SmallOrder"]["properties"]["items"]["maxItems"] == 2


def test_the_declared_signature_keeps_the_route_s_other_parameters() -> None:
    router = APIGatewayRouter()

    @validated_body(router, SmallOrder)
    def order(request: Order, shop: str) -> Response[str]:
        raise AssertionError("not called")

    assert [(p.name, p.annotation) for p in inspect.signature(order).parameters.values()] == [
        ("request", SmallOrder),
        ("shop", str),
    ]
    assert order.__name__ == "order"  # Powertools names the operation after it


@pytest.mark.parametrize(
    ("body", "kind", "loc"),
    [(None, "missing", ("body",)), ("", "missing", ("body",)), ("{", "json_invalid", ("body", 1))],
)
def test_a_missing_or_malformed_body_is_the_resolver_s_own_validation_error(
    body: str | None, kind: str, loc: tuple[Any, ...]
) -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_body(body, Order)
    [error] = raised.value.errors()
    assert (error["type"], tuple(error["loc"])) == (kind, loc)
