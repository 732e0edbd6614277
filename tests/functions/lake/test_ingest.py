"""The training table kept from a lake in moto's S3: only the delta read, replaced and deleted objects dropped,
the retention window, and bad objects stopping the run by name with the table untouched."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pytest

from functions.adapters import factory
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore
from functions.core import layout
from functions.core.data_source import DataSource, S3Location
from functions.core.errors import ChangedMeanwhile
from functions.lake.ingest import IngestReport, Snapshot, ingest, load_snapshot
from functions.lake.ledger import ListedObject
from functions.lake.tables import DataError
from functions.training.train import load_recipe, load_table
from stage.names import ResourceNames
from tests.lake_data import example_table, parquet

LAKE = "user-lake"
SOURCE = DataSource(kind="s3", uris=(f"s3://{LAKE}/sales/",), target="diagnosis", key="patient_id")


def put(key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=LAKE, Key=key, Body=body)


@pytest.fixture
def lake(aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    for day, (start, stop) in enumerate([(0, 200), (200, 400), (400, 569)], start=1):
        put(f"sales/dt=2026-12-0{day}/part-0.parquet", parquet(example_table(start, stop)))
    put("sales/dt=2026-12-03/_SUCCESS", b"")


def run(names: ResourceNames, source: DataSource = SOURCE, now: datetime | None = None) -> IngestReport:
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)
    return ingest(source, S3Source(factory.client("s3")), store, artifacts_bucket=names.artifacts_bucket,
                  now=now or datetime.now(UTC))  # fmt: skip


def ledger_bytes(names: ResourceNames) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=layout.LEDGER_KEY)["Body"].read())


def test_the_first_run_reads_every_object_and_the_next_only_the_new_partition(lake: None, names: ResourceNames) -> None:
    first = run(names)
    assert len(first.read) == 3 and first.rows_read == 569 and first.ledger.rows == 569, "_SUCCESS is no data"
    put("sales/dt=2026-12-04/part-0.parquet", parquet(example_table(0, 50)))
    second = run(names)
    assert second.read == (f"s3://{LAKE}/sales/dt=2026-12-04/part-0.parquet",)
    assert second.rows_read == 50 and second.kept == 3 and second.ledger.rows == 619
    assert run(names).read == (), "nothing new: nothing read"


def test_a_replaced_object_swaps_its_rows_and_a_deleted_one_drops_them(lake: None, names: ResourceNames) -> None:
    run(names)
    put("sales/dt=2026-12-01/part-0.parquet", parquet(example_table(0, 20)))  # restated: 20 rows, not 200
    boto3.client("s3").delete_object(Bucket=LAKE, Key="sales/dt=2026-12-02/part-0.parquet")
    report = run(names)
    assert report.replaced == (f"s3://{LAKE}/sales/dt=2026-12-01/part-0.parquet",)
    assert report.deleted == (f"s3://{LAKE}/sales/dt=2026-12-02/part-0.parquet",)
    assert report.read == report.replaced and report.ledger.rows == 20 + 169


def test_the_retention_window_keeps_the_last_days_by_partition_date(lake: None, names: ResourceNames) -> None:
    windowed = SOURCE.model_copy(update={"retention_days": 2})
    report = run(names, windowed, now=datetime(2026, 12, 4, 12, tzinfo=UTC))
    assert [uri.split("/")[-2] for uri in report.read] == ["dt=2026-12-02", "dt=2026-12-03"]
    later = run(names, windowed, now=datetime(2026, 12, 4, 12, tzinfo=UTC) + timedelta(days=1))
    assert later.expired == (f"s3://{LAKE}/sales/dt=2026-12-02/part-0.parquet",) and later.ledger.rows == 169


def test_the_snapshot_reads_back_the_features_without_the_key_and_the_target(lake: None, names: ResourceNames) -> None:
    report = run(names)
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)
    table = load_snapshot(store, Snapshot(ledger=report.ledger, target="diagnosis", key="patient_id"))
    columns, target = load_table(load_recipe())
    assert list(table.columns) == list(columns), "the row id is no feature and the label no column"
    assert sorted(table.target.tolist()) == sorted(str(t) for t in target)
    assert table.arrived.shape == (569,) and (table.arrived > 0).all()


CSV = DataSource(kind="s3", uris=(f"s3://{LAKE}/csv/",), format="csv", target="y")
JSONL = DataSource(kind="s3", uris=(f"s3://{LAKE}/jsonl/",), format="jsonl", target="y")


@pytest.mark.parametrize(
    ("source", "key", "body"),
    [
        (CSV, "csv/a.csv", b"zip,size,y\n02139,1.5,yes\n10001,2,no\n"),
        (
            JSONL,
            "jsonl/a.jsonl",
            b'{"zip": "02139", "size": 1.5, "y": "yes"}\n{"zip": "10001", "size": 2, "y": "no"}\n',
        ),
    ],
)
def test_csv_and_json_lines_objects_are_read(
    aws: None, names: ResourceNames, source: DataSource, key: str, body: bytes
) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    put(key, body)
    report = run(names, source)
    assert report.ledger.rows == 2
    assert report.ledger.column_types()["size"] == "number"
    assert report.ledger.column_types()["zip"] in ("string", "integer")


def _renamed() -> bytes:
    table = example_table(0, 10)
    return parquet(table.rename_columns(["radius" if n == "mean_radius" else n for n in table.column_names]))


def _retyped() -> bytes:
    table = example_table(0, 10)
    return parquet(table.set_column(0, "mean_radius", pa.array(["big"] * 10)))


def _unlabelled() -> bytes:
    table = example_table(0, 10)
    index = table.column_names.index("diagnosis")
    return parquet(table.set_column(index, "diagnosis", pa.array([None] * 10, pa.string())))


BAD_OBJECTS = [
    ("missing column", lambda: parquet(example_table(0, 10).drop_columns(["mean_radius"])), "mean_radius"),
    ("renamed column", _renamed, "not in the table ['radius']"),
    ("wrong type", _retyped, "'mean_radius' holds string"),
    ("unreadable Parquet", lambda: b"PAR1 not really", "not readable as parquet"),
    ("empty object", lambda: b"", "is empty"),
    ("no rows", lambda: parquet(example_table(0, 0)), "no rows"),
    ("missing label", _unlabelled, "'diagnosis' (the target) is missing in 10 row(s)"),
]


@pytest.mark.parametrize(("problem", "body", "message"), BAD_OBJECTS, ids=[b[0] for b in BAD_OBJECTS])
def test_a_bad_object_stops_the_run_by_name_and_leaves_the_table_as_it_was(
    lake: None, names: ResourceNames, problem: str, body: object, message: str
) -> None:
    run(names)
    before = ledger_bytes(names)
    key = "sales/dt=2026-12-05/part-0.parquet"
    put(key, body())  # type: ignore[operator]
    with pytest.raises(DataError, match=f"s3://{LAKE}/{key}") as raised:
        run(names)
    assert message in str(raised.value)
    assert ledger_bytes(names) == before, "the table is not half-written"


def test_a_declared_column_absent_from_the_first_object_is_named(aws: None, names: ResourceNames) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    put("sales/a.parquet", parquet(example_table(0, 5).drop_columns(["patient_id"])))
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['patient_id'\]"):
        run(names)
    with pytest.raises(KeyError):
        S3RetrainStore(factory.client("s3"), names.artifacts_bucket).get(layout.LEDGER_KEY)


def test_an_unreadable_source_is_named(aws: None, names: ResourceNames) -> None:
    with pytest.raises(DataError, match=f"cannot list s3://{LAKE}/sales/"):
        run(names)


ATHENA = DataSource(
    kind="athena", query="SELECT * FROM sales", database="lake", output_uri=f"s3://{LAKE}/results/",
    uris=(f"s3://{LAKE}/sales/",), target="diagnosis", key="patient_id",
)  # fmt: skip


class _AthenaInMoto:
    """Athena's part, which moto cannot play: each run writes the query's result as Athena does, CSV at
    <output_uri><execution id>.csv (quoted values, an empty cell for NULL), and names it."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.runs = 0

    def run(self, source: DataSource) -> S3Location:
        import pyarrow.csv as pa_csv

        self.runs += 1
        key = f"results/q-{self.runs}.csv"
        body = io.BytesIO()
        pa_csv.write_csv(self.table, body, pa_csv.WriteOptions(quoting_style="all_valid"))
        put(key, body.getvalue())
        put(f"{key}.metadata", b"athena's own metadata: never data")
        return S3Location(bucket=LAKE, prefix=key)


def test_an_athena_source_is_its_query_s_result_and_each_run_replaces_the_last(aws: None, names: ResourceNames) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    athena = _AthenaInMoto(example_table(0, 300))
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)

    def run_query() -> IngestReport:
        return ingest(ATHENA, S3Source(factory.client("s3")), store, artifacts_bucket=names.artifacts_bucket,
                      now=datetime.now(UTC), queries=athena)  # fmt: skip

    first = run_query()
    assert first.read == (f"s3://{LAKE}/results/q-1.csv",) and first.ledger.rows == 300
    athena.table = example_table(0, 400)
    second = run_query()
    assert second.read == (f"s3://{LAKE}/results/q-2.csv",) and second.deleted == first.read
    assert second.ledger.rows == 400 and second.ledger.column_types()["mean_radius"] == "number"
    table = load_snapshot(store, Snapshot(ledger=second.ledger, target="diagnosis", key="patient_id"))
    assert sorted(table.columns) == sorted(load_table(load_recipe())[0])


def test_an_athena_result_without_the_declared_label_is_named(aws: None, names: ResourceNames) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE)
    athena = _AthenaInMoto(example_table(0, 10).drop_columns(["diagnosis"]))
    with pytest.raises(DataError, match=r"s3://user-lake/results/q-1.csv lacks the column\(s\) \['diagnosis'\]"):
        ingest(ATHENA, S3Source(factory.client("s3")), S3RetrainStore(factory.client("s3"), names.artifacts_bucket),
               artifacts_bucket=names.artifacts_bucket, now=datetime.now(UTC), queries=athena)  # fmt: skip


def test_two_runs_at_once_never_lose_each_other_s_objects(lake: None, names: ResourceNames) -> None:
    """Run A reads the source; meanwhile run B takes in a new day and commits; A's commit is refused."""
    run(names)
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)

    class Interleaved(S3Source):
        def get(self, listed: ListedObject) -> tuple[bytes, str | None]:
            put("sales/dt=2026-12-05/part-0.parquet", parquet(example_table(0, 5)))
            assert [uri.split("/")[-2] for uri in run(names).read] == ["dt=2026-12-04", "dt=2026-12-05"]
            return super().get(listed)

    put("sales/dt=2026-12-04/part-0.parquet", parquet(example_table(0, 4)))
    with pytest.raises(ChangedMeanwhile, match=layout.LEDGER_KEY):
        ingest(SOURCE, Interleaved(factory.client("s3")), store, artifacts_bucket=names.artifacts_bucket,
               now=datetime.now(UTC))  # fmt: skip
    after = run(names)
    assert after.read == () and after.ledger.rows == 569 + 4 + 5, "B's objects are all in the table"
