"""GET /openapi.json, the document Powertools builds from the routes' signatures, and GET /docs, the same for people.

A row's schema is the live model's: the document's `Instance` (one row as an object) and `Columns` (MLflow's
`inputs` as columns) components are written from its feature spec when the document is asked for (types,
the valid range a value is refused outside of, training categories as examples, required features), so that a client
generated from the document has the features as fields. Nothing of it runs on a /predict request.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.core.features import Feature, FeatureSpec, FeatureType
from functions.inference.dependencies import request_config
from functions.inference.front_door import Resolver
from functions.inference.live_model import LiveModel
from functions.inference.request_body import CSV_MEDIA_TYPE

OPENAPI_TITLE = "Slipway inference API"
DOCS_PATH = "/docs"
JSON = content_types.APPLICATION_JSON


def router(app: Resolver, live_model: LiveModel, *, csv_paths: frozenset[str]) -> APIGatewayRouter:
    """GET /openapi.json: `app`'s document, built on demand, with the rows typed by `live_model`'s features and
    the CSV body documented beside the JSON one on `csv_paths`."""
    openapi_router = APIGatewayRouter()

    @openapi_router.get("/openapi.json", summary="This document", include_in_schema=False)
    def openapi() -> Response[str]:
        document = json.loads(app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1"))
        predictor = live_model.current().predictor
        spec = predictor.manifest.feature_spec if predictor is not None else None
        row_key = request_config(openapi_router).row_key
        document.setdefault("components", {}).setdefault("schemas", {}).update(row_schemas(spec, row_key))
        for path in csv_paths:
            document["paths"][path]["post"]["requestBody"]["content"][CSV_MEDIA_TYPE] = csv_body(spec)
        return Response(status_code=200, content_type=JSON, body=json.dumps(document))

    return openapi_router


def row_schemas(spec: FeatureSpec | None, row_key: str | None) -> dict[str, Any]:
    """The `Instance` and `Columns` schemas of `spec`'s rows (any object without a live model)."""
    if spec is None:
        anything = {"type": "object", "description": "No live model is loaded: see GET /model once one is."}
        return {"Instance": anything, "Columns": {**anything, "additionalProperties": {"type": "array"}}}
    properties = {feature.name: _feature_schema(feature) for feature in spec.features}
    if row_key is not None:
        properties[row_key] = {"description": "The row's key (data.key): captured with the answer, never scored."}
    required = [feature.name for feature in spec.features if feature.required]
    instance = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    columns = {
        "type": "object",
        "properties": {name: {"type": "array", "minItems": 1, "items": schema} for name, schema in properties.items()},
        "required": required,
        "additionalProperties": False,
    }
    return {"Instance": instance, "Columns": columns}


def csv_body(spec: FeatureSpec | None) -> dict[str, Any]:
    """The text/csv body of a route that takes rows: a header row naming the features, then a line per row."""
    # A row of each feature's training value (what a missing one is imputed with): one the model accepts.
    values = {f.name: f.impute for f in spec.features} if spec is not None else {"feature": ""}
    return {
        "schema": {
            "type": "string",
            "description": "A header row of feature names, then one line per row: an empty cell is missing, "
            "a number is a number, a category's text stays text; the rows meet the same validation as JSON's.",
        },
        "example": ",".join(values) + "\n" + ",".join(str(value) for value in values.values()) + "\n",
    }


_JSON_TYPES = {
    FeatureType.NUMBER: "number",
    FeatureType.INTEGER: "integer",
    FeatureType.CATEGORY: "string",
    FeatureType.BOOLEAN: "boolean",
}


def _feature_schema(feature: Feature) -> dict[str, Any]:
    """One feature's value: its type, the range outside which it is refused, its training categories.

    A feature that is not required may be null or left out: it is imputed with its training value.
    """
    schema: dict[str, Any] = {
        "type": _JSON_TYPES[feature.type] if feature.required else [_JSON_TYPES[feature.type], "null"]
    }
    notes = []
    if feature.valid_min is not None:
        schema["minimum"] = feature.valid_min
    if feature.valid_max is not None:
        schema["maximum"] = feature.valid_max
    if feature.train_min is not None and feature.train_max is not None:
        notes.append(f"trained on {feature.train_min} to {feature.train_max}; outside is served and flagged")
    if feature.categories is not None:
        # Examples, not an enum: another category is served (flagged out of range), so the schema must not
        # refuse it; generated clients keep a plain string and fuzzers try the training categories first.
        schema["examples"] = list(feature.categories)
        notes.append(
            f"trained on the categories {', '.join(map(repr, feature.categories))}; another is served and "
            "flagged out of range"
        )
    if not feature.required:
        notes.append(f"missing or null is imputed with {feature.impute!r}")
    schema["description"] = "; ".join(notes)
    return schema


@cache  # once per resolver
def enable_docs(app: Resolver) -> None:
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
