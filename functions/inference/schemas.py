"""Request and response bodies of the inference API; the OpenAPI document is generated from them."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, create_model, model_validator
from pydantic_core import PydanticCustomError

from functions.core.errors import FieldError, InvalidRequest
from functions.core.features import FeatureSpec, NonFiniteLiteral
from functions.core.manifest import Parity, Task


def parse_json(text: str) -> Any:
    """Parse a request body fast (orjson); on failure re-parse with the standard library so that a
    NaN/Infinity literal or an overflowing number is refused by its field name, not as malformed JSON.

    Raises json.JSONDecodeError (a 400) for anything the standard library cannot read either,
    nesting deeper than Python's stack included.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(text, parse_constant=NonFiniteLiteral, parse_int=_integer)
        # orjson refuses a \ud800-\udfff escape that is not half of a pair; the standard library keeps it
        # as a lone surrogate, which no answer, log line or stored object can encode as UTF-8.
        json.dumps(value, ensure_ascii=False).encode()
    except RecursionError:
        raise json.JSONDecodeError("arrays and objects nested too deeply", text, 0) from None
    except UnicodeEncodeError:
        lone = next((m.start() for m in _SURROGATE_ESCAPES.finditer(text) if len(m.group()) == 6), 0)
        message = "a \\u escape is half of a surrogate pair: strings must be valid Unicode"
        raise json.JSONDecodeError(message, text, lone) from None
    return value


# A surrogate pair's two escapes (12 characters), or one surrogate escape alone (6).
_SURROGATE_ESCAPES = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a pair
    r"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"  # one alone
)


def _integer(digits: str) -> int | float:
    # More digits than Python converts to int (ValueError) is far past any float too: refused
    # by its field name as non-finite, like 1e999.
    if len(digits) > sys.get_int_max_str_digits() > 0:
        return NonFiniteLiteral(digits)
    return int(digits)


def dump_json(payload: Any) -> str:
    """Serialise a response body: JSON values, and pydantic models (a route's return value) as their JSON form."""
    return orjson.dumps(payload, default=_model_json).decode()


def _model_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _Rows(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def __repr__(self) -> str:
        # The resolver formats route arguments into a debug message on every call, log level
        # notwithstanding; the default repr of 1,000 rows costs more than scoring them.
        return f"{type(self).__name__}(<rows>)"


_INSTANCES = "Rows to score: feature name to value. See GET /model for the features."
_RECORDS = "The same rows, as MLflow's dataframe_records (pandas' to_dict(orient='records'))."
_SPLIT = "The same rows as MLflow's dataframe_split (pandas' to_dict(orient='split')): columns, and one list per row."
_SPLIT_DATA = "One list of values per row, in `columns`' order."
_INPUTS = (
    "The same rows as MLflow's `inputs`: a dict of columns (feature name to one value per row), or a list of rows, "
    "each an object or a list of values in the order of GET /model's features."
)
# A row's schema is the live model's: the `Instance` and `Columns` components are written from its feature spec
# when GET /openapi.json is answered (functions.inference.openapi_routes).
INSTANCE_REF = "#/components/schemas/Instance"
COLUMNS_REF = "#/components/schemas/Columns"


def _INSTANCES_SCHEMA(schema: dict[str, Any]) -> None:  # noqa: N802  (a field's json_schema_extra)
    """A list of rows: each an `Instance`."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option["items"] = {"$ref": INSTANCE_REF}


def _INPUTS_SCHEMA(schema: dict[str, Any]) -> None:  # noqa: N802  (a field's json_schema_extra)
    """MLflow's inputs: `Columns`, or a list of rows (each an `Instance` or a list of values)."""
    schema.pop("anyOf", None)
    schema["anyOf"] = [
        {"$ref": COLUMNS_REF},
        {"type": "array", "minItems": 1, "items": {"anyOf": [{"$ref": INSTANCE_REF}, {"type": "array", "items": {}}]}},
        {"type": "null"},
    ]


def _an_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "Input should be a valid dictionary")
    return value


# A row: any JSON object, kept as parsed. A JSON object's keys are text already, and its values
# are checked by the feature spec; `dict[str, Any]` would copy every row to check the keys again,
# which costs more than scoring 1,000 rows (1.2 ms of a 1,000-row request, `make bench`).
Row = Annotated[dict[str, Any], PlainValidator(_an_object, json_schema_input_type=dict[str, Any])]


class DataFrameSplit(BaseModel):
    """Rows as column names and one list of values per row; pandas' `index`, if sent, is ignored."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str] = Field(min_length=1, description="Feature names, in the order of each row's values.")
    data: list[list[Any]] = Field(min_length=1, description=_SPLIT_DATA)
    index: list[Any] | None = Field(None, description="Row labels (ignored: answers follow the rows' order).")

    @model_validator(mode="after")
    def _rectangular(self) -> DataFrameSplit:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("dataframe_split.columns names a feature twice")
        widths = {len(row) for row in self.data}
        if widths != {len(self.columns)}:
            raise ValueError(f"every dataframe_split.data row must hold {len(self.columns)} values, one per column")
        return self


class PredictRequest(_Rows):
    """The /predict body, as code reads it: rows in one of four shapes (exactly one), read through `rows_in`.

    The deployment's model adds its row limit (`predict_request_model`).
    """

    # Exactly one shape: said in the schema too, so that generated clients and fuzzers send one.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    max_rows: ClassVar[int | None] = None  # the row limit of `inputs` (the other shapes' fields carry theirs)

    instances: list[Row] | None = Field(None, min_length=1, description=_INSTANCES, json_schema_extra=_INSTANCES_SCHEMA)
    dataframe_records: list[Row] | None = Field(
        None, min_length=1, description=_RECORDS, json_schema_extra=_INSTANCES_SCHEMA
    )
    dataframe_split: DataFrameSplit | None = Field(None, description=_SPLIT)
    inputs: dict[str, list[Any]] | list[Any] | None = Field(None, description=_INPUTS, json_schema_extra=_INPUTS_SCHEMA)

    @model_validator(mode="after")
    def _one_shape(self) -> PredictRequest:
        given = [name for name in _SHAPES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"send the rows as exactly one of {', '.join(_SHAPES)}; got {len(given)}")
        if self.inputs is not None:
            count = _input_rows(self.inputs)
            if self.max_rows is not None and count > self.max_rows:
                raise PydanticCustomError(
                    "too_long",
                    "inputs holds {count} rows; the limit is {limit}",
                    {"count": count, "limit": self.max_rows},
                )
        return self

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows, for a body whose rows name their values (every shape but `inputs` as lists: see `rows_in`)."""
        return self.rows_in(_unnamed)

    def rows_in(self, order: Callable[[], Sequence[str]]) -> list[dict[str, Any]]:
        """The rows as feature name -> value, whichever shape they came in.

        `order()` names the values of `inputs` rows sent as lists (the live model's features, in order).
        """
        if self.instances is not None:
            return self.instances
        if self.dataframe_records is not None:
            return self.dataframe_records
        if self.dataframe_split is not None:
            return _zipped(self.dataframe_split.columns, self.dataframe_split.data)
        assert self.inputs is not None
        if isinstance(self.inputs, dict):
            return _zipped(list(self.inputs), list(zip(*self.inputs.values(), strict=True)))
        if isinstance(self.inputs[0], dict):
            return self.inputs
        names = list(order())
        if any(len(values) != len(names) for values in self.inputs):
            raise InvalidRequest(
                f"each inputs row must hold {len(names)} values, one per feature in GET /model's order",
                [FieldError(("inputs",), "row_width", f"rows of {len(names)} values expected")],
                status=422,
            )
        return _zipped(names, self.inputs)


def _unnamed() -> Sequence[str]:
    raise ValueError("rows sent as lists of values are read in the live model's feature order: use rows_in")


def _zipped(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, values, strict=True)) for values in rows]


def _input_rows(inputs: dict[str, list[Any]] | list[Any]) -> int:
    """How many rows MLflow's `inputs` holds; ValueError naming what is wrong with its shape."""
    if isinstance(inputs, dict):
        lengths = {len(column) for column in inputs.values()}
        if not inputs or len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                "inputs as columns needs at least one column, every column with the same number (>0) of values"
            )
        return lengths.pop()
    kinds = {type(row) for row in inputs}
    if not inputs or not (kinds <= {dict} or kinds <= {list}):
        raise ValueError("inputs as a list needs at least one row, every row an object or every row a list of values")
    return len(inputs)


_SHAPES = ("instances", "dataframe_records", "dataframe_split", "inputs")


def predict_request_model(max_instances: int) -> type[PredictRequest]:
    """The /predict body, with the row limit of this deployment (on whichever shape the rows come in)."""

    def rows(description: str) -> Any:
        return Field(
            None, min_length=1, max_length=max_instances, description=description, json_schema_extra=_INSTANCES_SCHEMA
        )

    split = create_model(
        "DataFrameSplit",
        __base__=DataFrameSplit,
        data=(list[list[Any]], Field(min_length=1, max_length=max_instances, description=_SPLIT_DATA)),
    )
    model = create_model(
        "PredictRequest",
        __base__=PredictRequest,
        instances=(list[Row] | None, rows(_INSTANCES)),
        dataframe_records=(list[Row] | None, rows(_RECORDS)),
        dataframe_split=(split | None, Field(None, description=_SPLIT)),
    )
    model.max_rows = max_instances
    return model


class OutlierOut(BaseModel):
    """How unlike the training rows this row is, taken over all its features together."""

    score: float = Field(
        ge=0, description="The row's distance from the training data over the flagging threshold: above 1, flagged."
    )
    flag: bool = Field(description="True when the row is unlike the training data (score above 1).")


class PredictionOut(BaseModel):
    """One row's answer."""

    label: str | None = Field(None, description="Predicted class (classification).")
    probabilities: dict[str, float] | None = Field(None, description="Class to probability (classification).")
    value: float | None = Field(None, description="Predicted value (regression).")
    imputed: list[str] = Field(description="Features that were missing and filled with their training value.")
    out_of_range: list[str] = Field(description="Features outside their training range (served, but flagged).")
    outlier: OutlierOut | None = Field(
        None, description="The model's outlier detector on this row; null for plan B or a model without one."
    )
    fallback: str | None = Field(description="Null, or why plan B answered instead of the model.")


class PredictResponse(BaseModel):
    model_version: str | None = Field(description="The live version that answered (or that plan B stood in for).")
    predictions: list[PredictionOut]


class CandidateInfo(BaseModel):
    """A rollout's candidate as this container holds it."""

    version: str
    mode: Literal["shadow", "canary"]
    percent: float = Field(description="Canary: share of requests it answers. Shadow: share it also scores.")
    started_at: datetime
    loaded: bool
    reason: str | None = Field(None, description="Why it is not loaded (the live model answers alone).")
    metric: str | None = None
    metrics: dict[str, float] | None = Field(None, description="Its holdout metrics, when loaded.")


class ModelInfo(BaseModel):
    name: str = Field(description="The name the Open Inference Protocol serves it under: /v2/models/{name}.")
    version: str
    task: Task
    classes: list[str] | None
    metric: str
    metrics: dict[str, float]
    parity: Parity
    feature_spec: FeatureSpec
    candidate: CandidateInfo | None = Field(None, description="The rollout's candidate, when one is under way.")


class Health(BaseModel):
    status: Literal["ready", "degraded"]
    model_version: str | None
    reason: str | None = Field(
        description="Why the service is degraded: plan B answers, or the last good version does because the "
        "registry's live version cannot be loaded."
    )
    candidate: CandidateInfo | None = Field(
        None, description="The rollout's candidate; one that cannot be loaded does not degrade the service."
    )


class ErrorBody(BaseModel):
    message: str
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Each broken rule: loc, type, msg.")


class InferenceErrorBody(BaseModel):
    """An error of the Open Inference Protocol's routes (/v2/...), shaped as the protocol says."""

    error: str


# Every status a route may answer besides its success: the function's own (400, 404, 413, 415, 422, 503) and the
# front door's (429 when a client is throttled, 500/502 when the function fails, 413 above the front door's limit).
_ERROR_STATUSES = {
    400: "The body cannot be read: malformed JSON or CSV, text not in its charset, bad base64",
    404: "No such route, or no such resource under it",
    413: "The body is over the deployment's limit (inference.max_body_bytes) or the front door's",
    415: "A media type, charset or Content-Encoding the API does not read",
    422: "The body breaks its schema or the live model's feature spec, or holds more rows than the limit",
    429: "Throttled by the front door (the client's usage plan or the API's rate)",
    500: "The function failed (the front door answers 500 or 502 with a message)",
    502: "The function failed (the front door answers 500 or 502 with a message)",
    503: "No live model is loaded, or a storage dependency is unavailable: retry shortly",
}
# Every 503 the function answers says when to retry (functions.inference.error_handlers).
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying: the live pointer's refresh interval (a model loaded by "
        "then answers), or 1 after a storage dependency failed.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
BODY_ERRORS = (400, 413, 415, 422)  # a route that reads a body
ALWAYS = (429, 500, 502)  # any route, from the front door


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI response's content: `model` as application/json."""
    return {"application/json": {"model": model}}


def route_responses(
    status: int, description: str, model: type[BaseModel], *errors: int, error_model: type[BaseModel] = ErrorBody
) -> dict[int, Any]:
    """A route's OpenAPI responses: its answer (`model` under `status`), then its `errors` (error_responses)."""
    return {status: {"description": description, "content": _json_body(model)}} | error_responses(
        *errors, model=error_model
    )


def error_responses(*statuses: int, model: type[BaseModel] = ErrorBody) -> dict[int, Any]:
    """The OpenAPI responses of `statuses` (and the front door's), each with `model` as its body."""
    content = _json_body(model)
    # The front door's own answers are {"message": ...}, whatever the route.
    front_door = _json_body(ErrorBody)
    answers: dict[int, Any] = {
        status: {"description": _ERROR_STATUSES[status], "content": content} for status in statuses
    }
    if 503 in answers:
        answers[503]["headers"] = RETRY_AFTER
    return answers | {status: {"description": _ERROR_STATUSES[status], "content": front_door} for status in ALWAYS}
