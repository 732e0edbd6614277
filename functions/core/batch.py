"""Batch scoring of CSV files: parsing with line numbers, the delta, and the shape of outputs.

AWS-free: the scoring function and the local stack call these with bytes and
listings; the S3 adapter reads and writes them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.core import layout
from functions.core.errors import InvalidRequest
from functions.core.features import FeatureSpec, FeatureType

CSV_SUFFIX = ".csv"
SCORED_SUFFIX = ".scored.csv"
ERRORS_SUFFIX = ".errors.csv"
LEDGER_DIR = "_ledger/"


class BatchItem(BaseModel):
    """One object to score: what the plan writes to the manifest and the Distributed Map hands out."""

    model_config = ConfigDict(frozen=True)

    key: str
    etag: str
    input_prefix: str
    output_prefix: str

    @model_validator(mode="after")
    def _inside_its_prefixes(self) -> BatchItem:
        # The outputs' keys are made from these: an item from anywhere else must not write anywhere else.
        check_prefixes(self.input_prefix, self.output_prefix)
        if not self.key.startswith(self.input_prefix) or self.key == self.input_prefix:
            raise ValueError(f"key {self.key!r} is not an object under input_prefix {self.input_prefix!r}")
        return self


class LedgerEntry(BaseModel):
    """The record that an input object (key, ETag) was scored: the delta's memory."""

    model_config = ConfigDict(frozen=True)

    key: str
    etag: str
    model_version: str | None
    rows: int = Field(description="Rows scored.")
    errors: int = Field(description="Rows refused (listed in the errors object).")
    output_key: str
    errors_key: str | None


def check_prefixes(input_prefix: str, output_prefix: str) -> None:
    """Refuse prefixes outside batch/ or overlapping each other (outputs would be rescored as inputs)."""
    for name, prefix in (("input", input_prefix), ("output", output_prefix)):
        if not prefix.startswith(layout.BATCH_PREFIX) or prefix.startswith(layout.BATCH_RUNS_PREFIX):
            raise ValueError(
                f"--{name} {prefix!r} must be a key prefix under {layout.BATCH_PREFIX} in the artifacts bucket "
                f"(and not under {layout.BATCH_RUNS_PREFIX}): the scoring function may read and write only there"
            )
        if not prefix.endswith("/"):
            raise ValueError(f"--{name} {prefix!r} must end with '/' (a folder of objects)")
    if input_prefix.startswith(output_prefix) or output_prefix.startswith(input_prefix):
        raise ValueError(f"input {input_prefix!r} and output {output_prefix!r} must not contain each other")


def normalise_etag(etag: str) -> str:
    return etag.strip('"')


def relative_key(item: BatchItem) -> str:
    return item.key[len(item.input_prefix) :]


def output_key(item: BatchItem) -> str:
    return f"{item.output_prefix}{relative_key(item)}{SCORED_SUFFIX}"


def errors_key(item: BatchItem) -> str:
    return f"{item.output_prefix}{relative_key(item)}{ERRORS_SUFFIX}"


def ledger_key(item: BatchItem) -> str:
    """Named by key and ETag, so one listing of the ledger tells which objects are done."""
    return f"{item.output_prefix}{LEDGER_DIR}{relative_key(item)}/{normalise_etag(item.etag)}.json"


def delta(
    objects: Iterable[tuple[str, str]], ledger_keys: Iterable[str], *, input_prefix: str, output_prefix: str
) -> list[BatchItem]:
    """The CSV objects (key, ETag) under `input_prefix` whose exact version has no ledger entry yet."""
    done = set(ledger_keys)
    items = []
    for key, etag in objects:
        if not key.endswith(CSV_SUFFIX) or key.endswith("/"):
            continue
        item = BatchItem(key=key, etag=normalise_etag(etag), input_prefix=input_prefix, output_prefix=output_prefix)
        if ledger_key(item) not in done:
            items.append(item)
    return sorted(items, key=lambda item: item.key)


@dataclass(frozen=True)
class RowError:
    """A row that could not be scored: its line in the file and why."""

    line: int
    message: str


@dataclass
class ParsedCsv:
    """The rows of a CSV file with their line numbers, and the lines that are not rows."""

    lines: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _value(text: str, kind: FeatureType | None) -> Any:
    text = text.strip()
    if text == "":
        return None  # missing: imputed, as a JSON null would be
    if kind is FeatureType.CATEGORY:
        return text
    if kind is FeatureType.BOOLEAN:
        return _BOOLEAN_TEXTS.get(text.lower(), text)  # anything else is refused by name, as in JSON
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text  # 'nan'/'inf' are refused by name, as in JSON


# What a CSV cell may say for a boolean feature, compared case-insensitively (pandas' to_csv writes True/False).
_BOOLEAN_TEXTS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def parse_csv(data: bytes, spec: FeatureSpec | None = None) -> ParsedCsv:
    """Rows keyed by the header's column names; line 1 is the header.

    CSV has no types, so a cell is read as its feature in `spec` is typed: a category
    keeps its text ("01" stays "01"), a boolean reads true/false/1/0/yes/no, a number
    reads as one. A column the spec lacks (or every column, without a spec) is a number
    when it reads as one, else text. An empty cell is missing, as a JSON null is.
    """
    types = {feature.name: feature.type for feature in spec.features} if spec is not None else {}
    parsed = ParsedCsv()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        parsed.errors.append(RowError(1, f"the file is not UTF-8: {exc}"))
        return parsed
    # newline="": the csv module reads the line ends itself, so a bare \r (an old Mac's line end) ends a line too.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            parsed.errors.append(RowError(1, "no header line"))
            return parsed
        names = [name.strip() for name in header]
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(names):
                parsed.errors.append(RowError(line, f"{len(fields)} fields, the header has {len(names)}"))
                continue
            parsed.lines.append(line)
            parsed.rows.append(
                {name: _value(value, types.get(name)) for name, value in zip(names, fields, strict=True)}
            )
    except csv.Error as exc:  # a field over the csv module's size limit, and the like: that line cannot be read
        parsed.errors.append(RowError(reader.line_num or 1, f"unreadable CSV: {exc}"))
    return parsed


def refused_rows(exc: InvalidRequest, lines: Sequence[int]) -> dict[int, str]:
    """Row index -> message, from the field errors of an InvalidRequest over `lines`' rows."""
    refused: dict[int, list[str]] = {}
    for error in exc.errors:
        if len(error.loc) >= 2 and isinstance(error.loc[1], int):
            where = ".".join(str(part) for part in error.loc[2:]) or "row"
            refused.setdefault(error.loc[1], []).append(f"{where}: {error.msg}")
    return {index: "; ".join(messages) for index, messages in refused.items() if index < len(lines)}


def scored_csv(lines: Sequence[int], predictions: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> bytes:
    """The scored rows, one per input row, with the input's line number first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["label", *(f"probability_{c}" for c in classes)] if classes else ["value"]
    writer.writerow(["line", *columns, "fallback", "imputed", "out_of_range"])
    for line, prediction in zip(lines, predictions, strict=True):
        if classes:
            probabilities = prediction.get("probabilities") or {}
            values = [prediction.get("label"), *(probabilities.get(c) for c in classes)]
        else:
            values = [prediction.get("value")]
        imputed = ";".join(prediction.get("imputed", []))
        outside = ";".join(prediction.get("out_of_range", []))
        writer.writerow([line, *values, prediction.get("fallback") or "", imputed, outside])
    return out.getvalue().encode()


def errors_csv(errors: Sequence[RowError]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "error"])
    for error in sorted(errors, key=lambda e: e.line):
        writer.writerow([error.line, error.message])
    return out.getvalue().encode()
