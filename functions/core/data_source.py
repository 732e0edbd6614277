"""Where a stage's training data lives: the one declaration (the stage's `data` settings).

`recipe` (the default): the recipe's `load_data()`. Whoever runs it (`slipway train` on a
stack, and the retrain pipeline's Prepare on every run) lands its table as one Parquet object
in the artifacts bucket, so the pipeline and the user's hand read the same data.

`s3`: the user's lake, S3 prefixes of Parquet, CSV or JSON Lines objects (Hive-style
partitions such as `dt=2026-12-01/` included). Prepare lists them on every run and reads only
the objects that are new or changed (docs/retrain.md, "Where the data lives").
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

    kind: Literal["recipe", "s3"] = Field(
        "recipe",
        description="recipe: load_data(), landed in the artifacts bucket by whoever runs it; s3: the prefixes in "
        "`uris`, read object by object, only the new or changed ones each run.",
    )
    uris: tuple[str, ...] = Field((), description="kind s3: the prefixes holding the data, s3://bucket/prefix/.")
    format: Literal["parquet", "csv", "jsonl"] = Field("parquet", description="kind s3: the objects' format.")
    target: str | None = Field(None, description="kind s3: the column holding the label (or value) to learn.")
    key: str | None = Field(
        None, description="A row id column that is not a feature: left out of training (and of drift)."
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Train on the objects of the last N days only (by their dt=/date= partition, else their "
        "upload time); unset: everything.",
    )

    @model_validator(mode="after")
    def _declared(self) -> Self:
        if self.kind == "s3":
            if not self.uris or not self.target:
                raise ValueError("data.kind 's3' needs data.uris (s3://bucket/prefix/) and data.target (a column)")
            for uri in self.uris:
                parse_s3_uri(uri)
        elif self.uris:
            raise ValueError("data.uris is for data.kind 's3'; the recipe's data lands in the artifacts bucket")
        if self.key is not None and self.key == self.target:
            raise ValueError(f"data.key and data.target are both {self.key!r}: the row id cannot be the label")
        return self

    def locations(self) -> tuple[S3Location, ...]:
        """The declared prefixes (kind s3); none for a recipe source."""
        return tuple(parse_s3_uri(uri) for uri in self.uris)

    @property
    def target_column(self) -> str:
        """The column of each object that holds the target."""
        return self.target if self.kind == "s3" and self.target else RECIPE_TARGET_COLUMN
