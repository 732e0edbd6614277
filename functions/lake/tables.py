"""Reading source objects into the table's columns, and the table's Parquet parts, with pyarrow.

Every object is checked against the table's columns before anything is kept: a missing,
extra (renamed) or retyped column, an unreadable or empty object stops the run with a
`DataError` that names the object and the column. Values are stored as the model reads them:
numbers as float64, categories as strings, booleans as booleans.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from functions.lake.ledger import ColumnType, TableColumn

_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "null": pa.null(),
}


class DataError(ValueError):
    """A source object (or query result) cannot join the training table; the message names it and the column."""


def column_type(arrow_type: pa.DataType) -> ColumnType | None:
    """The table's type of an Arrow column; None for a type the model cannot take (dates, lists, ...)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_null(arrow_type):
        return "null"
    return None


def read_object(body: bytes, fmt: str, uri: str, columns: Sequence[TableColumn] = ()) -> pa.Table:
    """One object's rows as Arrow; CSV columns already typed as the table's (a bad value names its column)."""
    if not body:
        raise DataError(f"{uri} is empty: delete it, or write its rows (an empty object is never data)")
    try:
        if fmt == "parquet":
            return pq.read_table(io.BytesIO(body))
        if fmt == "csv":
            # Text and booleans are typed as the table's (a code such as 02139 stays text); numbers are inferred.
            types = {c.name: _ARROW_TYPES[c.type] for c in columns if c.type in ("string", "boolean")}
            # An empty cell is missing; a quoted empty one ("", as Athena writes an empty text) is text.
            options = pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
            )
            return pa_csv.read_csv(io.BytesIO(body), convert_options=options)
        return pa_json.read_json(io.BytesIO(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{uri} is not readable as {fmt}: {exc}") from exc


def conform(
    table: pa.Table, uri: str, columns: Sequence[TableColumn], *, required: Sequence[str]
) -> tuple[pa.Table, tuple[TableColumn, ...]]:
    """`table` in the table's columns and types, and the columns as they now stand (a null column gets a type).

    With no columns yet, this object's columns become the table's. DataError when a column is
    missing, extra, of another type, or of a type the model cannot take.
    """
    names = list(table.column_names)
    if len(set(names)) != len(names):
        raise DataError(f"{uri} repeats a column name: {names}")
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(f"{uri} lacks the column(s) {missing}, which the data settings name (data.target/data.key)")
    if columns:
        expected = [column.name for column in columns]
        lacking = [name for name in expected if name not in names]
        extra = [name for name in names if name not in expected]
        if lacking or extra:
            raise DataError(
                f"{uri} has other columns than the table: missing {lacking}, not in the table {extra} (a renamed "
                "column shows as both); fix or delete the object, or declare a new source for a new schema"
            )
    declared = {column.name: column.type for column in columns}
    arrays, result = [], []
    for name in [column.name for column in columns] or names:
        array = table.column(name)
        found = column_type(array.type)
        if found is None:
            raise DataError(
                f"{uri}: column {name!r} is {array.type}; a training column holds numbers, text or booleans"
            )
        kind = _merged(declared.get(name, "null"), found)
        if kind is None:
            raise DataError(
                f"{uri}: column {name!r} holds {found} values where the table has {declared[name]}; fix the object "
                "or declare a new source"
            )
        arrays.append(_cast(array, kind))
        result.append(TableColumn(name=name, type=kind))
    return pa.Table.from_arrays(arrays, names=[c.name for c in result]), tuple(result)


def _merged(held: ColumnType, found: ColumnType) -> ColumnType | None:
    """The column's type once an object of type `found` joins it; None when they do not mix."""
    if held == "null" or held == found:
        return found
    if found == "null":
        return held
    if {held, found} == {"integer", "number"}:
        return "number"
    return None


def _cast(array: pa.ChunkedArray, kind: ColumnType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return array.cast(_ARROW_TYPES[kind])


def part_bytes(table: pa.Table) -> bytes:
    """The part's Parquet bytes: the same rows always give the same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def read_part(body: bytes, columns: Sequence[TableColumn]) -> pa.Table:
    """A stored part in the table's current columns (a column null when it was written takes its type)."""
    table = pq.read_table(io.BytesIO(body))
    return pa.Table.from_arrays([_cast(table.column(c.name), c.type) for c in columns], names=[c.name for c in columns])


def from_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[TableColumn]) -> pa.Table:
    """Python rows (labelled feedback) in the table's columns; a value that does not fit becomes missing."""
    arrays = []
    for column in columns:
        values = [row.get(column.name) for row in rows]
        arrays.append(_lenient(values, column.type))
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def _lenient(values: list[Any], kind: ColumnType) -> pa.Array:
    return pa.array([_fit(value, kind) for value in values], type=_ARROW_TYPES[kind])


def _fit(value: Any, kind: ColumnType) -> Any:
    """`value` as a `kind` column holds it, or None (missing, imputed by training) when it is not one.

    A number written as text ("1", as a label file's whole-number label is kept) is a number.
    """
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if (
        kind == "integer"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and float(value).is_integer()
    ):
        return int(value)
    if kind == "string" and value is not None:
        return str(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    return None
