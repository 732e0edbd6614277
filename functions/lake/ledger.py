"""The accumulated training table's ledger: which source objects it holds, and what a run must read.

The table is one Parquet part per source object, kept in the artifacts bucket. The ledger
lists each part with the object it was read from (key, ETag, version id, upload time), so a
run compares the source's listing with it and reads only what is new or changed (the delta),
drops the parts of objects deleted or replaced, and applies the retention window. Writing the
ledger is a run's one commit: parts are written first, the ledger last, so a run that stops
half-way leaves the previous table whole. AWS-free: listings come in as plain records.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from functions.core.data_source import DataSource

ColumnType = Literal["integer", "number", "string", "boolean", "null"]
# Hive-style date partitions: .../dt=2026-12-01/..., date=, day=, ds=.
_PARTITION_DATE = re.compile(r"(?:^|/)(?:dt|date|day|ds)=(\d{4}-\d{2}-\d{2})(?:/|$)")


class ListedObject(BaseModel):
    """One object of the source as listed."""

    model_config = ConfigDict(frozen=True)

    uri: str
    bucket: str
    key: str
    etag: str
    last_modified: datetime
    size: int

    @property
    def event_date(self) -> date | None:
        """The date of its Hive partition (dt=, date=, day=, ds=), when its key has one."""
        match = _PARTITION_DATE.search(self.key)
        return date.fromisoformat(match.group(1)) if match else None

    @property
    def hidden(self) -> bool:
        """A folder marker or a file Hive and Spark ignore (_SUCCESS, .crc): never data."""
        name = self.key.rsplit("/", 1)[-1]
        return not name or name.startswith(("_", "."))


class TableColumn(BaseModel):
    """One column of the table: its name and type (set by the first object that has a value in it)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: ColumnType


class IngestedObject(BaseModel):
    """One source object in the table: what was read, when it was uploaded, and the part that holds its rows."""

    model_config = ConfigDict(frozen=True)

    uri: str
    etag: str
    version_id: str | None = None
    last_modified: datetime
    event_date: date | None = None
    rows: int
    part_key: str
    part_sha256: str

    def same_as(self, listed: ListedObject) -> bool:
        return self.etag == listed.etag and self.last_modified == listed.last_modified


class Ledger(BaseModel):
    """The table as of the last run: its source's fingerprint, its columns and its objects (sorted by URI)."""

    model_config = ConfigDict(frozen=True)

    source: str
    columns: tuple[TableColumn, ...] = ()
    objects: tuple[IngestedObject, ...] = ()

    @property
    def rows(self) -> int:
        return sum(item.rows for item in self.objects)

    @property
    def watermark(self) -> datetime | None:
        """The upload time of its newest object: how recent the data is."""
        return max((item.last_modified for item in self.objects), default=None)

    def column_types(self) -> dict[str, ColumnType]:
        return {column.name: column.type for column in self.columns}


# What a table is made of: changing one of these starts a new table (the window, a timeout or the workgroup
# do not, and neither does a setting added to DataSource later).
_IDENTITY = ("kind", "uris", "format", "target", "key", "query", "database")


def source_fingerprint(source: DataSource) -> str:
    """What identifies a source's table: its kind, locations, format, target, key and query."""
    declared = [(name, getattr(source, name)) for name in _IDENTITY]
    return hashlib.sha256(repr(declared).encode()).hexdigest()


def part_id(listed: ListedObject) -> str:
    """The part's name: the object's URI and ETag, so a replaced object gets a new part."""
    return hashlib.sha256(f"{listed.uri}\n{listed.etag}".encode()).hexdigest()


@dataclass
class DeltaPlan:
    """What a run does: objects to read, parts kept, and parts dropped (deleted, replaced or expired)."""

    read: list[ListedObject] = field(default_factory=list)
    kept: list[IngestedObject] = field(default_factory=list)
    replaced: list[IngestedObject] = field(default_factory=list)
    deleted: list[IngestedObject] = field(default_factory=list)
    expired: list[IngestedObject] = field(default_factory=list)
    skipped_expired: int = 0


def cutoff(now: datetime, retention_days: int | None) -> datetime | None:
    """The oldest upload or partition time the window keeps."""
    return None if retention_days is None else now - timedelta(days=retention_days)


def _expired(event_date: date | None, last_modified: datetime, oldest: datetime | None) -> bool:
    if oldest is None:
        return False
    if event_date is not None:
        return event_date < oldest.date()
    return last_modified < oldest


def plan_delta(ledger: Ledger, listing: list[ListedObject], *, now: datetime, retention_days: int | None) -> DeltaPlan:
    """Compare the listing with the ledger: read the new and changed objects, drop the gone and expired."""
    oldest = cutoff(now, retention_days)
    listed = {item.uri: item for item in listing if not item.hidden}
    plan = DeltaPlan()
    for held in ledger.objects:
        current = listed.get(held.uri)
        if current is None:
            plan.deleted.append(held)
        elif _expired(held.event_date, held.last_modified, oldest):
            plan.expired.append(held)
        elif held.same_as(current):
            plan.kept.append(held)
        else:
            plan.replaced.append(held)
    known = {held.uri for held in plan.kept} | {held.uri for held in plan.expired}
    for uri in sorted(listed):
        item = listed[uri]
        if uri in known:
            continue
        if _expired(item.event_date, item.last_modified, oldest):
            plan.skipped_expired += 1
            continue
        plan.read.append(item)
    return plan
