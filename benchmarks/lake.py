"""Prepare's ingestion of a lake table: reading only the new rows (the delta) against re-reading the whole table.

Every retrain run starts with functions.lake.ingest.ingest: it lists the source and reads only
the objects its ledger does not hold yet. This section measures that on a table of 1,000,000
rows in 100 Hive-partitioned Parquet objects when one object of 10,000 new rows arrives, and,
in the same process against the same table, a full re-read (the ledger deleted, so every
object is read again, as a Prepare without a ledger would). Both run through the deployed
adapters (S3Source, S3RetrainStore) on moto's in-process S3: no network, so the figures are
this machine's CPU cost of listing, reading, checking and writing back the parts.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from moto import mock_aws

from benchmarks.table import Row
from benchmarks.workload import Workload, offline_environment
from functions.adapters import factory
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore
from functions.core import layout
from functions.core.data_source import DataSource
from functions.lake.ingest import IngestReport, ingest

OBJECTS = 100
ROWS_PER_OBJECT = 10_000
FEATURES = 30
DELTA_REPEATS = 5
TARGET_SPEEDUP = 10.0
LAKE = "bench-lake"
ARTIFACTS = "bench-lake-artifacts"
SOURCE = DataSource(kind="s3", uris=(f"s3://{LAKE}/sales/",), target="label", key="row_id")
FIRST_DAY = date(2026, 1, 1)


@dataclass(frozen=True)
class Measured:
    """The timed ingests: the delta ones (one new object each) and the full re-read of the final table."""

    objects: int
    rows_per_object: int
    delta_seconds: list[float]
    full_seconds: float
    delta: IngestReport  # the last delta run
    full: IngestReport
    new_uri: str  # the object the last delta run should have read, and nothing else


def _object(rows: int, seed: int) -> bytes:
    """One Parquet object: FEATURES float64 columns, a string label and a string row id."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {f"f{j}": rng.normal(size=rows) for j in range(FEATURES)}
    data["label"] = rng.choice(["yes", "no"], rows)
    data["row_id"] = np.char.add(f"r{seed}-", np.arange(rows).astype(str))
    sink = io.BytesIO()
    pq.write_table(pa.table(data), sink)
    return sink.getvalue()


def _key(day: int) -> str:
    return f"sales/dt={FIRST_DAY + timedelta(days=day):%Y-%m-%d}/part-0.parquet"


@contextmanager
def _moto() -> Iterator[None]:
    """moto's S3 in this process with dummy credentials, as tests/conftest.py's `aws`; the environment restored."""
    with offline_environment({}), mock_aws():
        yield


def measure(*, objects: int = OBJECTS, rows_per_object: int = ROWS_PER_OBJECT) -> Measured:
    """Write the table, ingest it once (untimed), then time DELTA_REPEATS delta ingests and one full re-read.

    Each delta run starts from the ledger of the `objects`-object table with one fresh object
    beside it (the previous new object deleted, the ledger put back), so every delta and the
    full re-read see the same `objects + 1` objects.
    """
    with _moto():
        s3 = factory.client("s3")
        s3.create_bucket(Bucket=LAKE)
        s3.create_bucket(Bucket=ARTIFACTS)
        for day in range(objects):
            s3.put_object(Bucket=LAKE, Key=_key(day), Body=_object(rows_per_object, day))
        reader, store = S3Source(s3), S3RetrainStore(s3, ARTIFACTS)

        def timed() -> tuple[float, IngestReport]:
            started = time.perf_counter()
            report = ingest(SOURCE, reader, store, artifacts_bucket=ARTIFACTS, now=datetime.now(UTC))
            return time.perf_counter() - started, report

        first = timed()[1]
        assert first.rows_read == objects * rows_per_object, first.summary()
        ledger = store.get(layout.LEDGER_KEY)
        delta_seconds = []
        for repeat in range(DELTA_REPEATS):
            if repeat:
                s3.delete_object(Bucket=LAKE, Key=_key(objects + repeat - 1))
                store.put(layout.LEDGER_KEY, ledger, "application/json")
            key = _key(objects + repeat)
            s3.put_object(Bucket=LAKE, Key=key, Body=_object(rows_per_object, objects + repeat))
            seconds, delta = timed()
            assert delta.read == (f"s3://{LAKE}/{key}",) and delta.kept == objects, delta.summary()
            delta_seconds.append(seconds)
        s3.delete_object(Bucket=ARTIFACTS, Key=layout.LEDGER_KEY)
        full_seconds, full = timed()
        assert len(full.read) == objects + 1 and full.ledger == delta.ledger, full.summary()
    return Measured(objects, rows_per_object, delta_seconds, full_seconds, delta, full, f"s3://{LAKE}/{key}")


def as_rows(measured: Measured, *, quick: bool = False) -> list[Row]:
    """The section's rows: the delta against the full re-read (the baseline column), and what each read."""
    delta = statistics.median(measured.delta_seconds)
    full = measured.full_seconds
    total = measured.full.ledger.rows
    new = measured.rows_per_object
    scale = " (--quick: a tenth of the rows, not the figures)" if quick else ""
    note = (
        f"lake{scale}: functions.lake.ingest.ingest, Prepare's first step, through S3Source and S3RetrainStore on "
        f"moto's in-process S3 (no network), on a table of {measured.objects} Hive-partitioned Parquet objects "
        f"(sales/dt=YYYY-MM-DD/part-0.parquet) of {new:,} rows each: {FEATURES} random float64 features, a string "
        "label and a string row id. Delta: one new object beside the ingested table (list, read it, check it, "
        f"write its part, commit the ledger), median of {len(measured.delta_seconds)} runs, each with a fresh "
        f"object and the ledger put back; baseline: the same {measured.objects + 1}-object table re-read whole after "
        "deleting its ledger, once, in the same process. Peak memory not measured (in-process, beside the trained "
        "models)"
    )
    target = f"≥ {TARGET_SPEEDUP:g}x"
    return [
        Row(f"lake: Prepare ingest, {new:,} new rows into a {total - new:,}-row table", "s", delta, full,
            target=target, met=full / delta >= TARGET_SPEEDUP, note=note),
        Row("lake: objects read (delta vs full re-read)", "objects", len(measured.delta.read),
            len(measured.full.read)),
        Row("lake: rows read (delta vs full re-read)", "rows", measured.delta.rows_read, measured.full.rows_read),
        Row("lake: bytes read (delta vs full re-read)", "MB", measured.delta.bytes_read / 1e6,
            measured.full.bytes_read / 1e6),
    ]  # fmt: skip


def run(workload: Workload | None = None, *, quick: bool = False) -> list[Row]:
    """The whole section; quick: a tenth of the rows per object (100 objects of 1,000 rows, 1,000 new)."""
    return as_rows(measure(rows_per_object=ROWS_PER_OBJECT // 10 if quick else ROWS_PER_OBJECT), quick=quick)
