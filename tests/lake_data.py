"""The example data as a user's lake holds it: Hive-partitioned Parquet with the label and a row id as columns."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from functions.training.train import load_recipe, load_table

TARGET, KEY = "diagnosis", "patient_id"


def example_table(start: int, stop: int) -> pa.Table:
    """Rows start..stop of the example data: its 30 features, the label and a row id (not a feature)."""
    columns, target = load_table(load_recipe())
    data = {name: pa.array(values[start:stop]) for name, values in columns.items()}
    data[TARGET] = pa.array([str(t) for t in target[start:stop]])
    data[KEY] = pa.array([f"p{i}" for i in range(start, stop)])
    return pa.table(data)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def partition(prefix: str, day: int, start: int, stop: int) -> tuple[str, bytes]:
    """The key and body of one day's object of rows start..stop under `prefix` (e.g. "sales/")."""
    return f"{prefix}dt=2026-12-{day:02d}/part-0.parquet", parquet(example_table(start, stop))
