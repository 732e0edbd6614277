"""The ledger's plan, from plain listings: what a run reads, keeps and drops; what starts a new table."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.core.data_source import DataSource
from functions.lake.ledger import IngestedObject, Ledger, ListedObject, part_id, plan_delta, source_fingerprint

NOW = datetime(2026, 12, 10, tzinfo=UTC)
SOURCE = DataSource(kind="s3", uris=("s3://lake/sales/",), target="y")


def listed(key: str, etag: str = "e1", day: int = 1) -> ListedObject:
    return ListedObject(uri=f"s3://lake/{key}", bucket="lake", key=key, etag=etag,
                        last_modified=datetime(2026, 12, day, tzinfo=UTC), size=10)  # fmt: skip


def held(item: ListedObject) -> IngestedObject:
    return IngestedObject(uri=item.uri, etag=item.etag, last_modified=item.last_modified, event_date=item.event_date,
                          rows=1, part_key=f"data/table/parts/{part_id(item)}.parquet", part_sha256="0")  # fmt: skip


def test_only_new_and_changed_objects_are_read_and_gone_ones_dropped() -> None:
    a, b, c = listed("sales/dt=2026-12-01/a"), listed("sales/dt=2026-12-02/b"), listed("sales/dt=2026-12-03/c")
    ledger = Ledger(source="x", objects=(held(a), held(b), held(c)))
    b2, d = listed("sales/dt=2026-12-02/b", etag="e2"), listed("sales/dt=2026-12-04/d")
    plan = plan_delta(ledger, [a, b2, d, listed("sales/_SUCCESS"), listed("sales/")], now=NOW, retention_days=None)
    assert [i.uri for i in plan.read] == [b2.uri, d.uri]
    assert [i.uri for i in plan.kept] == [a.uri]
    assert [i.uri for i in plan.replaced] == [b.uri] and [i.uri for i in plan.deleted] == [c.uri]
    assert part_id(b2) != part_id(b), "a restated object gets a new part"


def test_the_window_goes_by_partition_date_else_upload_time() -> None:
    old, new = listed("sales/dt=2026-11-01/a", day=9), listed("sales/b", day=1)
    plan = plan_delta(Ledger(source="x"), [old, new], now=NOW, retention_days=14)
    assert [i.uri for i in plan.read] == [new.uri] and plan.skipped_expired == 1, "dt= wins over the upload time"
    plan = plan_delta(Ledger(source="x", objects=(held(new),)), [new], now=NOW, retention_days=5)
    assert [i.uri for i in plan.expired] == [new.uri], "no partition: by upload time"


def test_a_new_table_starts_with_a_new_location_format_target_key_or_query_not_with_the_window() -> None:
    same = [SOURCE.model_copy(update=u) for u in ({"retention_days": 30}, {"workgroup": "other"})]
    assert {source_fingerprint(s) for s in same} == {source_fingerprint(SOURCE)}
    changed = [{"uris": ("s3://lake/other/",)}, {"format": "csv"}, {"target": "z"}, {"key": "id"}]
    assert len({source_fingerprint(SOURCE.model_copy(update=u)) for u in changed} | {source_fingerprint(SOURCE)}) == 5
