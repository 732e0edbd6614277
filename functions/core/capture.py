"""The capture record: a chunk of the served rows of one request, in columns, as the monitor reads it back.

The inference handler writes one JSON line per chunk of at most ROWS_PER_LINE
rows of a sampled request on stdout (no network call on the request path);
CloudWatch Logs ships the lines through Firehose to hourly partitions under
`capture/YYYY/MM/DD/HH/`. The local stack lands the same lines in the same
layout.

The record is columnar: one list per feature (and per answer field) instead of
one object per row, so the writer serialises whole numpy columns at once and
the monitor turns each column into an array without walking row objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from functions.core.layout import CAPTURE_PREFIX

# Marks a stdout line as a capture record; the CloudWatch Logs subscription filter matches on it.
CAPTURE_MARKER = "slipway_capture"
# The format version: 1 was one line per row; 2 is one columnar line per chunk of rows.
CAPTURE_SCHEMA: Literal[2] = 2
# The filter pattern of the subscription that ships capture lines (and nothing else) to Firehose.
CAPTURE_FILTER_PATTERN = f"{{ $.{CAPTURE_MARKER} = {CAPTURE_SCHEMA} }}"

# Rows per line. 100 rows of 30 numeric features are about 20 KB of JSON (typical
# values) and at most ~150 KB (every value a 24-character float, every feature named
# in a flag list); wider rows are split further by MAX_LINE_BYTES.
ROWS_PER_LINE = 100
# CloudWatch Logs takes events of up to 256 KiB (262,144 bytes, 26 of them per-event
# overhead) and truncates longer ones, which the monitor would then skip as malformed.
# Lines are kept under this bound, with room to spare; a chunk over it is halved.
MAX_LINE_BYTES = 200_000
# A category value is captured up to this many characters (or one more than the longest
# training category): longer text is unseen either way, and one value cannot fill a line.
MAX_CAPTURED_TEXT = 256

FeatureValue = float | int | str | bool | None


class ShadowColumns(BaseModel):
    """What a rollout's candidate in shadow said about the same rows (columns as the record's), or why not."""

    model_config = ConfigDict(frozen=True)

    version: str
    label: list[str | None] | None = None
    probabilities: dict[str, list[float | None]] | None = None
    value: list[float | None] | None = None
    latency_ms: float = Field(ge=0, description="The candidate's time to score the whole request.")
    error: str | None = None


class CaptureRecord(BaseModel):
    """Rows first_row .. first_row + rows - 1 of one request: canonical features (None when missing), answers, flags."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_: Literal[2] = Field(CAPTURE_SCHEMA, alias=CAPTURE_MARKER, description="Capture format version.")
    request_id: str
    time: AwareDatetime
    model_version: str | None
    caller: str | None = Field(None, description="Who sent the request, as the front door authenticated it.")
    first_row: int = Field(ge=0, description="Index in its request of the record's first row.")
    rows: int = Field(ge=1, description="Rows in this record; every column holds this many values.")
    features: dict[str, list[FeatureValue]]
    keys: list[str | None] | None = Field(
        None, description="Each row's key (the stage's data.key, sent with the row); None when no row had one."
    )
    label: list[str | None] | None = None
    probabilities: dict[str, list[float | None]] | None = None
    value: list[float | None] | None = None
    imputed: list[list[str]]
    out_of_range: list[list[str]]
    fallback: list[str | None]
    outlier: list[float | None] | None = Field(
        None, description="Each row's outlier score (above 1: flagged); None for a model without a detector."
    )
    # Which of the container's versions answered (live, or a canary's candidate), and in how long.
    model_role: Literal["live", "candidate"] = "live"
    latency_ms: float | None = Field(None, ge=0, description="Scoring time of the whole request.")
    shadow: ShadowColumns | None = None
    candidate_error: str | None = Field(None, description="Why a canary's candidate could not answer (live did).")

    @model_validator(mode="after")
    def _columns_hold_every_row(self) -> CaptureRecord:
        shadow = self.shadow
        columns: dict[str, Sequence[object] | None] = {
            "keys": self.keys, "label": self.label, "value": self.value, "imputed": self.imputed,
            "out_of_range": self.out_of_range, "fallback": self.fallback, "outlier": self.outlier,
            **{f"features.{name}": column for name, column in self.features.items()},
            **{f"probabilities.{c}": column for c, column in (self.probabilities or {}).items()},
            **({"shadow.label": shadow.label, "shadow.value": shadow.value} if shadow else {}),
            **{f"shadow.probabilities.{c}": column for c, column in ((shadow and shadow.probabilities) or {}).items()},
        }  # fmt: skip
        for name, column in columns.items():
            if column is not None and len(column) != self.rows:
                raise ValueError(f"column {name} holds {len(column)} values for {self.rows} rows")
        return self

    def without_key(self, key: str) -> list[CaptureRecord]:
        """This record with the rows of `key` erased: the runs of rows around them, each keeping its first_row (so
        labels by request id and row still find theirs); [] when every row was that key's."""
        keys = self.keys
        if keys is None or key not in keys:
            return [self]
        kept = [i for i in range(self.rows) if keys[i] != key]
        runs: list[list[int]] = []
        for i in kept:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        return [self._rows_of(run) for run in runs]

    def _rows_of(self, rows: list[int]) -> CaptureRecord:
        start, end = rows[0], rows[-1] + 1

        def part(column: Sequence[Any] | None) -> Any:
            return None if column is None else list(column[start:end])

        def answers(columns: dict[str, list[float | None]] | None) -> Any:
            return None if columns is None else {c: p[start:end] for c, p in columns.items()}

        shadow = self.shadow
        return self.model_copy(
            update={
                "first_row": self.first_row + start, "rows": end - start,
                "features": {name: column[start:end] for name, column in self.features.items()},
                "keys": part(self.keys), "label": part(self.label), "probabilities": answers(self.probabilities),
                "value": part(self.value), "imputed": part(self.imputed), "out_of_range": part(self.out_of_range),
                "fallback": part(self.fallback), "outlier": part(self.outlier),
                "shadow": None if shadow is None else shadow.model_copy(update={
                    "label": part(shadow.label), "probabilities": answers(shadow.probabilities),
                    "value": part(shadow.value),
                }),
            }
        )  # fmt: skip

    def row_records(self) -> Iterator[CapturedRow]:
        """The record's rows, one by one (for joins by (request_id, row))."""
        names = list(self.features)
        columns = [self.features[name] for name in names]
        probabilities = self.probabilities
        keys = self.keys
        for i in range(self.rows):
            yield CapturedRow(
                request_id=self.request_id,
                row=self.first_row + i,
                key=keys[i] if keys is not None else None,
                caller=self.caller,
                time=self.time,
                model_version=self.model_version,
                features={name: column[i] for name, column in zip(names, columns, strict=True)},
                label=self.label[i] if self.label is not None else None,
                probabilities={c: p[i] for c, p in probabilities.items()} if probabilities else None,
                value=self.value[i] if self.value is not None else None,
                imputed=self.imputed[i],
                out_of_range=self.out_of_range[i],
                fallback=self.fallback[i],
            )


@dataclass(frozen=True)
class CapturedRow:
    """One captured row, expanded from its record."""

    request_id: str
    row: int
    key: str | None
    caller: str | None
    time: datetime
    model_version: str | None
    features: dict[str, FeatureValue]
    label: str | None
    probabilities: dict[str, float | None] | None
    value: float | None
    imputed: list[str]
    out_of_range: list[str]
    fallback: str | None


def capture_key(hour: datetime, name: str) -> str:
    """Key of a capture object of `hour` (UTC), in the Firehose layout capture/YYYY/MM/DD/HH/name."""
    return f"{CAPTURE_PREFIX}{hour:%Y/%m/%d/%H}/{name}"
