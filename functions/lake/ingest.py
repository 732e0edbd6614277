"""The training table, kept current from the source: read the delta, keep the rest, record the snapshot.

`ingest` is what every run (and `slipway train` on a stack) does first; `load_snapshot`
reads a snapshot back into the columns training takes. AWS-free: the source and the
artifacts bucket come in as small interfaces (functions.adapters.lake_objects).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from functions.core import layout
from functions.core.data_source import RECIPE_TARGET_COLUMN, DataSource, S3Location
from functions.core.manifest import DataLineage, SourceObject
from functions.lake.ledger import (
    IngestedObject,
    Ledger,
    ListedObject,
    TableColumn,
    part_id,
    plan_delta,
    source_fingerprint,
)
from functions.lake.tables import DataError, conform, from_rows, part_bytes, read_object, read_part, sha256
from functions.training.frame import as_table
from functions.training.train import load_table


class SourceReader(Protocol):
    """The source's objects (functions.adapters.lake_objects.S3Source)."""

    def list(self, location: S3Location) -> Iterable[ListedObject]: ...
    def get(self, listed: ListedObject) -> tuple[bytes, str | None]: ...


class QueryRunner(Protocol):
    """Runs a source's query and says where its result is (functions.adapters.athena_queries.AthenaQueries)."""

    def run(self, source: DataSource) -> S3Location: ...


class PartReader(Protocol):
    """Where a snapshot's parts are read from: the artifacts bucket, or a training job's channel folder."""

    def get(self, key: str) -> bytes: ...


class TableStore(PartReader, Protocol):
    """The artifacts bucket: bytes by key (KeyError when absent), writes, and the ledger's conditional write."""

    def put(self, key: str, body: bytes, content_type: str = ...) -> None: ...
    def get_tagged(self, key: str) -> tuple[bytes, str]: ...
    def put_unless_changed(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> None: ...


class Snapshot(BaseModel):
    """What one run trains on: the table's ledger as it stood, and the labelled rows the run added."""

    model_config = ConfigDict(frozen=True)

    ledger: Ledger
    target: str
    key: str | None = None
    labelled_key: str | None = None
    labelled_sha256: str | None = None
    labelled_rows: int = 0

    @property
    def rows(self) -> int:
        return self.ledger.rows + self.labelled_rows

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    def lineage(self, snapshot_hash: str) -> DataLineage:
        """The manifest's record of this snapshot: each object with its ETag, the hash and the watermark."""
        return DataLineage(
            snapshot_hash=snapshot_hash,
            watermark=self.ledger.watermark,
            objects=tuple(
                SourceObject(uri=item.uri, etag=item.etag, version_id=item.version_id, rows=item.rows)
                for item in self.ledger.objects
            ),
            labelled_rows=self.labelled_rows,
        )


@dataclass(frozen=True)
class IngestReport:
    """What a run did to the table."""

    ledger: Ledger
    read: tuple[str, ...]
    rows_read: int
    bytes_read: int
    kept: int
    replaced: tuple[str, ...]
    deleted: tuple[str, ...]
    expired: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"read {len(self.read)} new or changed object(s) ({self.rows_read} rows), kept {self.kept}, dropped "
            f"{len(self.replaced)} replaced, {len(self.deleted)} deleted and {len(self.expired)} expired: "
            f"{self.ledger.rows} rows in {len(self.ledger.objects)} object(s)"
        )


def source_listing(
    source: DataSource, reader: SourceReader, *, artifacts_bucket: str, queries: QueryRunner | None
) -> list[ListedObject]:
    """The source's objects now: the declared prefixes', the recipe's landed table, or this run's query result."""
    if source.kind == "athena":
        if queries is None:
            raise ValueError("an athena source needs a query runner")
        result = queries.run(source)
        return [item for item in reader.list(result) if item.key == result.prefix]
    if source.kind == "recipe":
        return list(reader.list(S3Location(bucket=artifacts_bucket, prefix=layout.RECIPE_SOURCE_PREFIX)))
    return [item for location in source.locations() for item in reader.list(location)]


def read_ledger(store: TableStore, source: DataSource) -> tuple[Ledger, str | None]:
    """The table's ledger and its ETag; an empty ledger when there is none yet or the source's declaration changed."""
    fingerprint = source_fingerprint(source)
    try:
        body, etag = store.get_tagged(layout.LEDGER_KEY)
    except KeyError:
        return Ledger(source=fingerprint), None
    ledger = Ledger.model_validate_json(body)
    return (ledger if ledger.source == fingerprint else Ledger(source=fingerprint)), etag


def ingest(
    source: DataSource,
    reader: SourceReader,
    store: TableStore,
    *,
    artifacts_bucket: str,
    now: datetime,
    queries: QueryRunner | None = None,
) -> IngestReport:
    """Bring the table up to the source: read only new or changed objects, then commit the ledger.

    DataError (naming the object, or the query, and the column) stops it before the ledger is
    written, so the table stays as the last run left it. The ledger is written only if no other
    run wrote it since this one read it (ChangedMeanwhile otherwise): two runs at once never lose
    each other's objects.
    """
    ledger, etag = read_ledger(store, source)
    listing = source_listing(source, reader, artifacts_bucket=artifacts_bucket, queries=queries)
    plan = plan_delta(ledger, listing, now=now, retention_days=source.retention_days)
    columns: tuple[TableColumn, ...] = ledger.columns if plan.kept else ()
    required = [name for name in (source.target_column, source.key) if name]
    added: list[IngestedObject] = []
    rows_read = bytes_read = 0
    for listed in plan.read:
        body, version_id = reader.get(listed)
        bytes_read += len(body)
        table, columns = conform(read_object(body, source.object_format, listed.uri, columns), listed.uri, columns,
                                 required=required)  # fmt: skip
        if table.num_rows == 0:
            raise DataError(f"{listed.uri} has columns but no rows: delete it, or write its rows")
        unlabelled = table.column(source.target_column).null_count
        if unlabelled:
            raise DataError(
                f"{listed.uri}: column {source.target_column!r} (the target) is missing in {unlabelled} row(s); "
                "every training row needs its label"
            )
        part = part_bytes(table)
        key = layout.table_part_key(part_id(listed))
        store.put(key, part, "application/vnd.apache.parquet")
        rows_read += table.num_rows
        added.append(
            IngestedObject(
                uri=listed.uri, etag=listed.etag, version_id=version_id, last_modified=listed.last_modified,
                event_date=listed.event_date, rows=table.num_rows, part_key=key, part_sha256=sha256(part),
            )
        )  # fmt: skip
    objects = tuple(sorted([*plan.kept, *added], key=lambda item: item.uri))
    updated = Ledger(source=ledger.source, columns=columns if objects else (), objects=objects)
    if updated != ledger:
        store.put_unless_changed(layout.LEDGER_KEY, updated.model_dump_json().encode(), "application/json", etag=etag)
    return IngestReport(
        ledger=updated,
        read=tuple(item.uri for item in plan.read),
        rows_read=rows_read,
        bytes_read=bytes_read,
        kept=len(plan.kept),
        replaced=tuple(item.uri for item in plan.replaced),
        deleted=tuple(item.uri for item in plan.deleted),
        expired=tuple(item.uri for item in plan.expired),
    )


def add_labelled(
    store: TableStore,
    ledger: Ledger,
    rows: Sequence[tuple[Mapping[str, Any], Any]],
    *,
    key: str,
    target: str,
    key_column: str | None,
) -> Snapshot:
    """The snapshot of `ledger` with labelled `rows` (features, label) written beside it at `key`."""
    if not rows:
        return Snapshot(ledger=ledger, target=target, key=key_column)
    body = part_bytes(from_rows([{**features, target: label} for features, label in rows], ledger.columns))
    store.put(key, body, "application/vnd.apache.parquet")
    return Snapshot(
        ledger=ledger, target=target, key=key_column, labelled_key=key, labelled_sha256=sha256(body),
        labelled_rows=len(rows),
    )  # fmt: skip


@dataclass(frozen=True)
class LoadedTable:
    """A snapshot's rows as training takes them, with each row's upload time (epoch seconds)."""

    columns: dict[str, np.ndarray]
    target: np.ndarray
    arrived: np.ndarray


def load_snapshot(store: PartReader, snapshot: Snapshot) -> LoadedTable:
    """Every part of the snapshot (and its labelled rows), checked against its recorded hash, in ledger order.

    A row's arrival is its object's upload time; labelled rows count as of the newest object.
    """
    ledger = snapshot.ledger
    if ledger.watermark is None:
        raise DataError("the training table is empty: the source holds no data objects (docs/retrain.md)")
    pieces = [(item.part_key, item.part_sha256, item.last_modified, item.rows) for item in ledger.objects]
    if snapshot.labelled_key and snapshot.labelled_sha256:
        pieces.append((snapshot.labelled_key, snapshot.labelled_sha256, ledger.watermark, snapshot.labelled_rows))
    parts: list[pa.Table] = []
    for key, digest, _, _ in pieces:
        body = store.get(key)
        if sha256(body) != digest:
            raise DataError(f"the table's part {key} changed since the snapshot was taken (hash mismatch)")
        parts.append(read_part(body, ledger.columns))
    frame = pa.concat_tables(parts).to_pandas()
    features = frame.drop(columns=[name for name in (snapshot.target, snapshot.key) if name])
    names, labels = as_table(features, frame[snapshot.target])
    arrived = np.concatenate([np.full(rows, uploaded.timestamp()) for _, _, uploaded, rows in pieces])
    return LoadedTable(names, labels, arrived)


def snapshot_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def land_recipe_table(store: TableStore, recipe: ModuleType) -> bool:
    """Write the recipe's load_data() where a recipe source is read from; False when it is unchanged."""
    columns, target = load_table(recipe)
    body = table_bytes(columns, target, RECIPE_TARGET_COLUMN)
    try:
        if store.get(layout.RECIPE_SOURCE_KEY) == body:
            return False
    except KeyError:
        pass
    store.put(layout.RECIPE_SOURCE_KEY, body, "application/vnd.apache.parquet")
    return True


def table_bytes(columns: Mapping[str, np.ndarray], target: np.ndarray, target_column: str) -> bytes:
    """Named columns and the target (in `target_column`) as one Parquet object, the way a lake holds them."""
    if target_column in columns:
        raise DataError(f"the data has a feature named {target_column!r}, the name its target is kept under")
    arrays = {name: _arrow(values) for name, values in columns.items()}
    return part_bytes(pa.table({**arrays, target_column: _arrow(target)}))


def _arrow(values: np.ndarray) -> pa.Array:
    """A column as Arrow infers it (dates stay dates, and ingest refuses them by name); mixed values as text."""
    try:
        return pa.array(values.tolist() if values.dtype == object else values)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values.tolist()], type=pa.string())
