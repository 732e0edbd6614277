"""A small lake in moto's S3 for the local stack: the recipe's data as daily Hive partitions of Parquet,
each row with an id, and a prefix where label files land.

`slipway up --lake` and `slipway demo` train from it (the stage's data source becomes
`data.kind: "s3"` over it, with `key` and `labels`), so the delta, the snapshot, the gate and
labels arriving by key can be watched offline.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import ModuleType
from typing import Any

import numpy as np

from functions.core.data_source import DataSource
from functions.lake.ingest import table_bytes
from functions.training.train import load_table
from stage.names import ResourceNames

LAKE_PREFIX = "sales/"
# Where label files (key, label) land; the monitor takes each new one into feedback.
LABELS_PREFIX = "labels/"
# The label's column in the lake's objects (a name no recipe feature should have), and each row's id.
LAKE_TARGET = "label"
LAKE_KEY = "patient_id"
# The first partition's day; the local lake's objects are dated from it, one a day.
FIRST_DAY = date(2026, 12, 1)
LAKE_DAYS = 3


def lake_bucket(names: ResourceNames) -> str:
    return f"{names.prefix}-local-lake-{names.account}"


def lake_source(names: ResourceNames) -> DataSource:
    """The stage's data declaration for the local lake."""
    bucket = lake_bucket(names)
    return DataSource(
        kind="s3", uris=(f"s3://{bucket}/{LAKE_PREFIX}",), target=LAKE_TARGET, key=LAKE_KEY,
        labels=f"s3://{bucket}/{LABELS_PREFIX}",
    )  # fmt: skip


def day_key(day: int) -> str:
    """The key of the `day`-th partition's one object (0: FIRST_DAY)."""
    return f"{LAKE_PREFIX}dt={FIRST_DAY + timedelta(days=day)}/part-0.parquet"


def lake_object(columns: dict[str, np.ndarray], target: np.ndarray, keys: list[str]) -> bytes:
    """Rows as a lake object: the features by name, each row's id and the label."""
    return table_bytes({**columns, LAKE_KEY: np.asarray(keys, dtype=object)}, target, LAKE_TARGET)


def seed_lake(s3: Any, names: ResourceNames, recipe: ModuleType, *, days: int = LAKE_DAYS) -> DataSource:
    """Create the lake with the recipe's load_data() split into `days` daily objects; its declaration."""
    columns, target = load_table(recipe)
    bucket = lake_bucket(names)
    s3.create_bucket(Bucket=bucket)
    for day, rows in enumerate(np.array_split(np.arange(len(target)), days)):
        keys = [f"p{i}" for i in rows]
        body = lake_object({name: values[rows] for name, values in columns.items()}, target[rows], keys)
        s3.put_object(Bucket=bucket, Key=day_key(day), Body=body)
    return lake_source(names)
