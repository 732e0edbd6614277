"""Where a stage's training data lives: the one declaration (the stage's `data` settings).

`recipe` (the default): the recipe's `load_data()`. Whoever runs it (`slipway train` on a
stack, and the retrain pipeline's Prepare on every run) lands its table as one Parquet object
in the artifacts bucket, so the pipeline and the user's hand read the same data.

`s3`: the user's lake, S3 prefixes of Parquet, CSV or JSON Lines objects (Hive-style
partitions such as `dt=2026-12-01/` included). Prepare lists them on every run and reads only
the objects that are new or changed (docs/retrain.md, "Where the data lives").

`athena`: a query over Glue tables, run by Prepare on every run; its result (CSV in
`output_uri`) is the table, replacing the previous run's: the query itself picks the rows.

Whatever the kind, `labels` may name a prefix where ground truth arrives as files (key, label,
time): the monitor takes each new or changed one, once, into the stored feedback.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# s3://bucket/prefix: a bucket name as S3 allows it, then an optional key prefix.
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.*)$")
# The recipe's landed table names its target column this; a recipe feature may not.
RECIPE_TARGET_COLUMN = "__target__"


class S3Location(BaseModel):
    """One declared prefix."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/prefix` as its bucket and prefix (ValueError naming the URI otherwise)."""
    match = _S3_URI.match(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not an S3 location: write s3://bucket/prefix/")
    return S3Location(bucket=match.group(1), prefix=match.group(2))


class DataSource(BaseModel):
    """The training data's source, its shape and how much of it a run keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["recipe", "s3", "athena"] = Field(
        "recipe",
        description="recipe: load_data(), landed in the artifacts bucket by whoever runs it; s3: the prefixes in "
        "`uris`, read object by object, only the new or changed ones each run; athena: `query`, run each run.",
    )
    uris: tuple[str, ...] = Field(
        (),
        description="kind s3: the prefixes holding the data, s3://bucket/prefix/; kind athena: the S3 locations "
        "of the tables the query reads (Prepare may read them, and nothing else).",
    )
    format: Literal["parquet", "csv", "jsonl"] = Field("parquet", description="kind s3: the objects' format.")
    target: str | None = Field(None, description="kind s3: the column holding the label (or value) to learn.")
    key: str | None = Field(
        None, description="A row id column that is not a feature: left out of training (and of drift)."
    )
    labels: str | None = Field(
        None,
        description="Where ground truth arrives as files, s3://bucket/prefix/: Parquet, CSV or JSON Lines objects "
        "with columns key (the data.key of a served row), label and optionally time. Needs data.key.",
    )
    query: str | None = Field(None, description="kind athena: the SQL; its columns are the features and `target`.")
    database: str | None = Field(None, description="kind athena: the Glue database the query runs in.")
    workgroup: str = Field("primary", description="kind athena: the workgroup the query runs in.")
    output_uri: str | None = Field(None, description="kind athena: where Athena writes results, s3://bucket/prefix/.")
    query_timeout_seconds: int = Field(
        240, ge=10, le=840, description="kind athena: a query still running then is stopped and the run fails."
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Train on the objects of the last N days only (by their dt=/date= partition, else their "
        "upload time); unset: everything.",
    )

    @model_validator(mode="after")
    def _declared(self) -> Self:
        if self.kind == "s3" and (not self.uris or not self.target):
            raise ValueError("data.kind 's3' needs data.uris (s3://bucket/prefix/) and data.target (a column)")
        if self.kind == "athena":
            missing = [name for name in ("query", "database", "output_uri", "target") if not getattr(self, name)]
            if missing or not self.uris:
                raise ValueError(
                    f"data.kind 'athena' needs data.query, data.database, data.output_uri, data.target and data.uris "
                    f"(the S3 locations of the tables it reads); missing: {missing + ([] if self.uris else ['uris'])}"
                )
            parse_s3_uri(self.output_uri or "")
        if self.kind == "recipe" and self.uris:
            raise ValueError(
                "data.uris is for data.kind 's3' or 'athena'; the recipe's data lands in the artifacts bucket"
            )
        for uri in self.uris:
            parse_s3_uri(uri)
        if self.labels is not None:
            if self.key is None:
                raise ValueError("data.labels needs data.key: label files name their rows by that key")
            parse_s3_uri(self.labels)
        if self.key is not None and self.key == self.target:
            raise ValueError(f"data.key and data.target are both {self.key!r}: the row id cannot be the label")
        return self

    def labels_location(self) -> S3Location | None:
        """The declared label files' prefix, if any."""
        return parse_s3_uri(self.labels) if self.labels else None

    def locations(self) -> tuple[S3Location, ...]:
        """The declared prefixes (kinds s3 and athena); none for a recipe source."""
        return tuple(parse_s3_uri(uri) for uri in self.uris)

    @property
    def target_column(self) -> str:
        """The column of each object that holds the target."""
        return self.target if self.kind != "recipe" and self.target else RECIPE_TARGET_COLUMN

    @property
    def object_format(self) -> Literal["parquet", "csv", "jsonl"]:
        """How the objects read are written: a query's result is CSV, a recipe's table Parquet."""
        if self.kind == "recipe":
            return "parquet"
        return "csv" if self.kind == "athena" else self.format
