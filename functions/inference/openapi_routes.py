"""GET /openapi.json, the document Powertools builds from the routes' signatures, and GET /docs, the same for people."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

OPENAPI_TITLE = "Slipway inference API"
DOCS_PATH = "/docs"
JSON = content_types.APPLICATION_JSON


def router(app: APIGatewayRestResolver) -> APIGatewayRouter:
    """GET /openapi.json: `app`'s document, built on demand."""
    openapi_router = APIGatewayRouter()

    @openapi_router.get("/openapi.json", summary="This document", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(
            status_code=200,
            content_type=JSON,
            body=app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1"),
        )

    return openapi_router


@cache  # once per resolver
def enable_docs(app: APIGatewayRestResolver) -> None:
    """Swagger UI for people at GET /docs, from the same document; its script and styles are served inline by
    Powertools (no third-party CDN). "Try it out" sends the API key a reader enters in the x-api-key header.

    Called before the first request for it is routed, not at init: Powertools' OpenAPI models, which it
    needs, are a noticeable share of a cold start to import (`make bench`).
    """
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    app.enable_swagger(
        path=DOCS_PATH,
        title=OPENAPI_TITLE,
        version="1",
        security_schemes={"apiKey": APIKey(name="x-api-key", **{"in": APIKeyIn.header})},
        security=[{"apiKey": []}],
    )
