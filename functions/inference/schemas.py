"""Request and response bodies of the inference API; the OpenAPI document is generated from them."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, create_model, model_validator
from pydantic_core import PydanticCustomError

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
        return f"{type(self).__name__}(<{len(getattr(self, 'rows', ()))} rows>)"


_INSTANCES = "Rows to score: feature name to value. See GET /model for the features."
_RECORDS = "The same rows, as MLflow's dataframe_records (pandas' to_dict(orient='records'))."
_SPLIT = "The same rows as MLflow's dataframe_split (pandas' to_dict(orient='split')): columns, and one list per row."
_SPLIT_DATA = "One list of values per row, in `columns`' order."
_INSTANCES_SCHEMA: dict[str, Any] = {"items": {"type": "object", "additionalProperties": {}}}


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
    """The /predict body, as code reads it: rows in one of three shapes (exactly one), read through `rows`.

    The deployment's model adds its row limit (`predict_request_model`).
    """

    instances: list[Row] | None = Field(None, min_length=1, description=_INSTANCES, json_schema_extra=_INSTANCES_SCHEMA)
    dataframe_records: list[Row] | None = Field(
        None, min_length=1, description=_RECORDS, json_schema_extra=_INSTANCES_SCHEMA
    )
    dataframe_split: DataFrameSplit | None = Field(None, description=_SPLIT)

    @model_validator(mode="after")
    def _one_shape(self) -> PredictRequest:
        given = [name for name in _SHAPES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"send the rows as exactly one of {', '.join(_SHAPES)}; got {len(given)}")
        return self

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as feature name -> value, whichever shape they came in."""
        if self.instances is not None:
            return self.instances
        if self.dataframe_records is not None:
            return self.dataframe_records
        assert self.dataframe_split is not None
        columns = self.dataframe_split.columns
        return [dict(zip(columns, values, strict=True)) for values in self.dataframe_split.data]


_SHAPES = ("instances", "dataframe_records", "dataframe_split")


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
    return create_model(
        "PredictRequest",
        __base__=PredictRequest,
        instances=(list[Row] | None, rows(_INSTANCES)),
        dataframe_records=(list[Row] | None, rows(_RECORDS)),
        dataframe_split=(split | None, Field(None, description=_SPLIT)),
    )


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
