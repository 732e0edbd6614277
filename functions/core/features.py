"""The feature spec: the input contract, and the code that turns request rows into model input.

Every value is validated, canonicalised to its feature's precision and encoded
as float32 in one place, so that inputs differing below the precision give
byte-identical model input, and one row alone or inside a batch is encoded the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.core.errors import FieldError, InvalidRequest

MAX_PRECISION = 6
MAX_REPORTED_ERRORS = 20


class FeatureType(str, Enum):
    NUMBER = "number"
    INTEGER = "integer"
    CATEGORY = "category"
    BOOLEAN = "boolean"


class Feature(BaseModel):
    """One input feature: its type, precision, ranges, imputation value and whether it is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: FeatureType = FeatureType.NUMBER
    precision: int | None = Field(None, ge=0, le=MAX_PRECISION, description="Decimal places kept.")
    valid_min: float | None = Field(None, description="Below this a request is refused (422).")
    valid_max: float | None = None
    train_min: float | None = Field(None, description="Below this a value is served but flagged out_of_range.")
    train_max: float | None = None
    categories: tuple[str, ...] | None = Field(None, description="Training domain of a category feature.")
    impute: float | str | bool = Field(description="Training median (numbers) or mode (categories, booleans).")
    required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type is FeatureType.CATEGORY:
            if not self.categories:
                raise ValueError(f"category feature {self.name!r} needs its training categories")
            if self.impute not in self.categories:
                raise ValueError(f"impute value of {self.name!r} must be one of its categories")
        elif self.type is FeatureType.NUMBER and self.precision is None:
            raise ValueError(f"number feature {self.name!r} needs a precision")
        for low, high in ((self.valid_min, self.valid_max), (self.train_min, self.train_max)):
            if low is not None and high is not None and low > high:
                raise ValueError(f"feature {self.name!r}: range minimum {low} exceeds maximum {high}")
        return self

    @property
    def decimals(self) -> int:
        """Decimal places a value is rounded to before scoring."""
        if self.type is FeatureType.NUMBER:
            return self.precision if self.precision is not None else MAX_PRECISION
        return 0

    @property
    def scale(self) -> float:
        """10 ** decimals: a value is canonical when value * scale is a whole number."""
        return 10.0**self.decimals

    def encode_impute(self) -> float:
        """The imputation value as model input."""
        return _encode_scalar(self, self.impute)


class FeatureSpec(BaseModel):
    """The ordered features a model takes; column i of the model input is feature i."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: tuple[Feature, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FeatureSpec:
        names = [feature.name for feature in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return self

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def compile(self) -> CompiledSpec:
        """A fast encoder for this spec (built once per loaded model)."""
        return CompiledSpec(self)


def canonical(values: Any, scale: Any) -> Any:
    """Round to the precision(s) whose 10**decimals is `scale` (a number, or one per column).

    Bit for bit what np.round(values, decimals) computes (rint(values * 10**d) / 10**d),
    but for every column's precision in one pass. Every path that canonicalises a value
    (request rows, training tables, imputation values) goes through here.
    """
    return np.rint(values * scale) / scale


def encode_columns(spec: FeatureSpec, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> np.ndarray:
    """Encode a whole table (training data, batch files) the way serving encodes rows.

    Missing values (None or NaN) take the imputation value; numbers are rounded
    to their precision. Values are not range-checked: this is trusted data.
    """
    missing = [name for name in spec.names if name not in columns]
    if missing:
        raise ValueError(f"columns missing from the data: {missing}")
    encoded = []
    for feature in spec.features:
        raw = columns[feature.name]
        if feature.type is FeatureType.BOOLEAN:
            values = [feature.impute if _is_missing(v) else bool(v) for v in raw]
            encoded.append(np.array([_encode_scalar(feature, v) for v in values]))
        elif feature.type is FeatureType.CATEGORY:
            # Training data may hold a category as a number; the spec keeps categories as text.
            values = [feature.impute if _is_missing(v) else str(v) for v in raw]
            encoded.append(np.array([_encode_scalar(feature, v) for v in values]))
        else:
            column = np.asarray(raw, dtype=np.float64)
            column = np.where(np.isnan(column), float(feature.impute), column)
            encoded.append(canonical(column, feature.scale))
    return np.column_stack(encoded)


def category_texts(spec: FeatureSpec, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[int, list[str]]:
    """The text of each category column by its index in the spec, missing values imputed: what the model reads."""
    return {
        index: [str(feature.impute) if _is_missing(v) else str(v) for v in columns[feature.name]]
        for index, feature in enumerate(spec.features)
        if feature.type is FeatureType.CATEGORY
    }


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _encode_scalar(feature: Feature, value: Any) -> float:
    if feature.type is FeatureType.CATEGORY:
        assert feature.categories is not None
        return float(feature.categories.index(value)) if value in feature.categories else -1.0
    if feature.type is FeatureType.BOOLEAN:
        return 1.0 if value else 0.0
    return float(canonical(np.float64(value), feature.scale))


class NonFiniteLiteral(float):
    """A NaN or Infinity literal read from JSON: refused, never mistaken for a missing value."""


@dataclass(frozen=True)
class EncodedBatch:
    """Model input for a batch of rows, with the per-row flags the response reports."""

    matrix: np.ndarray  # float32, shape (rows, features)
    imputed: list[list[str]]
    out_of_range: list[list[str]]
    # The canonical float64 values before the cast for the model (imputed where missing;
    # category and boolean columns hold their codes), and which values were missing:
    # data capture reuses both instead of reading the rows again.
    canonical: np.ndarray
    missing: np.ndarray | None = None
    # The text of each category column (by its index), missing values imputed: the model reads
    # categories as strings; `canonical` holds their codes (index in the training domain, -1 unseen).
    texts: dict[int, list[str]] = field(default_factory=dict)

    @property
    def imputation_count(self) -> int:
        if self.missing is not None:
            return int(self.missing.sum())
        return sum(map(len, self.imputed))

    @property
    def out_of_range_count(self) -> int:
        return sum(map(len, self.out_of_range))


_NUMERIC_TYPES = (int, float)
_NUMERIC_OR_MISSING = frozenset({int, float, type(None)})
_MAX_ABS = 1e300  # beyond this an integer cannot become a float


class CompiledSpec:
    """Validates, canonicalises, imputes and encodes request rows for one feature spec.

    Well-formed numeric batches take a vectorised path; anything else (other
    feature types, or a batch with an error) takes the per-column path, which
    also names every broken field. Both give identical results.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.names = spec.names
        self._known = frozenset(self.names)
        features = spec.features
        getter = itemgetter(*self.names)
        self._getter = getter if len(self.names) > 1 else lambda row: (getter(row),)
        self._all_numeric = all(f.type in (FeatureType.NUMBER, FeatureType.INTEGER) for f in features)
        self._required = np.array([f.required for f in features])
        self._impute = np.array([f.encode_impute() for f in features])
        self._valid_min = np.array([_or(f.valid_min, -np.inf) for f in features])
        self._valid_max = np.array([_or(f.valid_max, np.inf) for f in features])
        self._train_min = np.array([_or(f.train_min, -np.inf) for f in features])
        self._train_max = np.array([_or(f.train_max, np.inf) for f in features])
        self._scale = np.array([f.scale for f in features])

    def encode(self, rows: Sequence[Mapping[str, Any]], *, loc: str = "instances") -> EncodedBatch:
        """Turn request rows into model input; raise InvalidRequest naming every broken field."""
        if not rows:
            raise InvalidRequest(f"{loc} must hold at least one row", [FieldError((loc,), "too_short", "no rows")])
        if all(type(row) is dict for row in rows) and self._known.issuperset(set().union(*rows)):
            return self._encode_checked(rows, loc)
        errors: list[FieldError] = []
        known = self._known
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                errors.append(FieldError((loc, index), "type", "each instance must be a JSON object"))
                continue
            if not known.issuperset(row):
                for name in sorted(row.keys() - known):
                    errors.append(FieldError((loc, index, name), "unknown_feature", _unknown_message(name, self.names)))
        if errors:
            raise _invalid(errors)
        return self._encode_checked(rows, loc)

    def _encode_checked(self, rows: Sequence[Mapping[str, Any]], loc: str) -> EncodedBatch:
        """Encode rows that are objects naming only known features."""
        if self._all_numeric:
            batch = self._encode_numeric(rows)
            if batch is not None:
                return batch
        return self._encode_by_column(rows, loc)

    def _encode_numeric(self, rows: Sequence[Mapping[str, Any]]) -> EncodedBatch | None:
        """The vectorised path; None sends the batch to the per-column path (which reports errors)."""
        try:
            values = [self._getter(row) for row in rows]  # C speed when every feature is present
        except KeyError:
            names = self.names
            values = [[row.get(name) for name in names] for row in rows]
        if not _NUMERIC_OR_MISSING.issuperset(map(type, chain.from_iterable(values))):
            return None
        try:
            matrix = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:
            return None
        missing = np.isnan(matrix)
        if np.isinf(matrix).any() or (missing & self._required).any():
            return None
        if missing.any():
            matrix = np.where(missing, self._impute, matrix)
        matrix = canonical(matrix, self._scale)
        if ((matrix < self._valid_min) | (matrix > self._valid_max)).any():
            return None
        outside = ((matrix < self._train_min) | (matrix > self._train_max)) & ~missing
        return EncodedBatch(
            matrix.astype(np.float32), self._flags(missing), self._flags(outside), canonical=matrix, missing=missing
        )

    def _flags(self, mask: np.ndarray) -> list[list[str]]:
        flags: list[list[str]] = [[] for _ in range(mask.shape[0])]
        if mask.any():
            names = self.names
            for row, column in zip(*np.nonzero(mask), strict=True):
                flags[row].append(names[column])
        return flags

    def _encode_by_column(self, rows: Sequence[Mapping[str, Any]], loc: str) -> EncodedBatch:
        errors: list[FieldError] = []
        n_rows = len(rows)
        matrix = np.empty((n_rows, len(self.names)), dtype=np.float64)
        missing = np.zeros(matrix.shape, dtype=bool)
        outside = np.zeros(matrix.shape, dtype=bool)
        texts: dict[int, list[str]] = {}
        for column, feature in enumerate(self.spec.features):
            values = [row.get(feature.name) for row in rows]
            encoded = self._encode_column(feature, values, loc, errors)
            if encoded is None:
                continue
            if feature.type is FeatureType.CATEGORY:
                texts[column] = [str(feature.impute) if value is None else str(value) for value in values]
            matrix[:, column] = encoded
            missing[:, column] = [value is None for value in values]
            outside[:, column] = self._outside_training(feature, encoded) & ~missing[:, column]
        if errors:
            raise _invalid(errors)
        return EncodedBatch(
            matrix.astype(np.float32),
            self._flags(missing),
            self._flags(outside),
            canonical=matrix,
            missing=missing,
            texts=texts,
        )

    def _encode_column(
        self, feature: Feature, values: list[Any], loc: str, errors: list[FieldError]
    ) -> np.ndarray | None:
        """The column's encoding, or None after appending an error for every broken value."""
        name = feature.name
        first_error = len(errors)
        broken: set[int] = set()
        is_category = feature.type is FeatureType.CATEGORY
        is_boolean = feature.type is FeatureType.BOOLEAN
        for index, value in enumerate(values):
            problem = self._value_problem(feature, value, is_category, is_boolean)
            if problem is not None:
                errors.append(FieldError((loc, index, name), *problem))
                broken.add(index)

        if is_category or is_boolean:
            if broken:
                return None
            return np.array([_encode_scalar(feature, v if v is not None else feature.impute) for v in values])
        impute = float(feature.impute)
        column = np.array([impute if v is None or i in broken else v for i, v in enumerate(values)], dtype=np.float64)
        column = canonical(column, feature.scale)
        # Range-check the well-typed values too, so one answer names every broken field.
        checked = [i for i, v in enumerate(values) if v is not None and i not in broken]
        self._check_valid_range(feature, column, values, checked, loc, errors)
        return None if len(errors) > first_error else column

    @staticmethod
    def _value_problem(feature: Feature, value: Any, is_category: bool, is_boolean: bool) -> tuple[str, str] | None:
        """(type, message) of the rule `value` breaks, or None."""
        name = feature.name
        if value is None:
            return ("missing", f"'{name}' is required") if feature.required else None
        kind = type(value)
        if isinstance(value, float) and not math.isfinite(value):
            return "finite", f"'{name}' must be a finite number, got {value}"
        if is_category:
            return None if kind is str else ("type", f"'{name}' must be a string category")
        if is_boolean:
            return None if kind is bool else ("type", f"'{name}' must be true or false")
        if kind not in _NUMERIC_TYPES:
            return "type", f"'{name}' must be a number, got {_json_type(value)}"
        if kind is int and abs(value) > _MAX_ABS:
            return "finite", f"'{name}' is too large to be a number"
        return None

    @staticmethod
    def _check_valid_range(
        feature: Feature, column: np.ndarray, values: list[Any], checked: list[int], loc: str, errors: list[FieldError]
    ) -> None:
        low, high = feature.valid_min, feature.valid_max
        for index in checked:
            value = column[index]
            if (low is not None and value < low) or (high is not None and value > high):
                errors.append(
                    FieldError(
                        (loc, index, feature.name),
                        "range",
                        f"'{feature.name}' must be between {low} and {high}, got {values[index]}",
                    )
                )

    @staticmethod
    def _outside_training(feature: Feature, column: np.ndarray) -> np.ndarray:
        if feature.type is FeatureType.CATEGORY:
            return column < 0
        outside = np.zeros(column.shape, dtype=bool)
        if feature.train_min is not None:
            outside |= column < feature.train_min
        if feature.train_max is not None:
            outside |= column > feature.train_max
        return outside


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _invalid(errors: list[FieldError]) -> InvalidRequest:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    summary = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in shown[:3])
    return InvalidRequest(f"invalid instances: {summary}{more}", shown)


def _unknown_message(name: str, known: list[str]) -> str:
    return f"unknown feature '{name}'; expected some of: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''}"


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", list: "array", dict: "object"}.get(type(value), type(value).__name__)


# A row key is an id the caller's systems know the row by: at most this many characters.
MAX_ROW_KEY_LENGTH = 128


def split_row_keys(
    rows: Sequence[Mapping[str, Any]], name: str | None, *, loc: str = "instances"
) -> tuple[Sequence[Mapping[str, Any]], list[str | None] | None]:
    """(rows without the key field, each row's key or None); (rows, None) when no row carries one.

    The key is not a feature: the model never sees it, drift never counts it, capture keeps it so
    that labels sent later by that key find the row. Raises InvalidRequest for a key that is not
    a string or an integer, or longer than MAX_ROW_KEY_LENGTH.
    """
    if name is None or not any(isinstance(row, Mapping) and name in row for row in rows):
        return rows, None
    keys: list[str | None] = []
    stripped: list[Mapping[str, Any]] = []
    errors: list[FieldError] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or name not in row:
            keys.append(None)
            stripped.append(row)
            continue
        value = row[name]
        if value is not None and (type(value) not in (str, int) or not 0 < len(str(value)) <= MAX_ROW_KEY_LENGTH):
            errors.append(
                FieldError(
                    (loc, index, name),
                    "row_key",
                    f"'{name}' is the row key: a string or an integer of 1 to {MAX_ROW_KEY_LENGTH} characters, "
                    f"got {_json_type(value)} {str(value)[:40]!r}",
                )
            )
        keys.append(None if value is None else str(value))
        stripped.append({field_name: v for field_name, v in row.items() if field_name != name})
    if errors:
        raise _invalid(errors)
    return stripped, keys
