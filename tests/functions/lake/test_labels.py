"""Label files under data.labels: read in any of the three formats, refused whole when broken, taken once each."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from functions.core import layout
from functions.core.data_source import DataSource, S3Location
from functions.core.errors import InvalidRequest
from functions.core.feedback import FeedbackItem, LabelJoin, StoredFeedback, conform_labels
from functions.lake.labels import LabelLedger, read_labels, take_labels
from functions.lake.tables import DataError
from functions.training.train import Bundle
from tests.functions.lake.memory import MemoryBucket, MemorySource

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
LABELS = S3Location(bucket="lake", prefix="labels/")


def _parquet(table: dict[str, list[object]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(table), sink)
    return sink.getvalue()


def test_the_three_formats_give_the_same_labels() -> None:
    csv = b"key,label,time\n1001,malignant,2026-12-01T10:00:00Z\np-2,benign,\n"
    jsonl = (
        b'{"key": "1001", "label": "malignant", "time": "2026-12-01T10:00:00+00:00"}\n'
        b'{"key": "p-2", "label": "benign"}\n'
    )
    parquet = _parquet(
        {"key": ["1001", "p-2"], "label": ["malignant", "benign"],
         "time": [datetime(2026, 12, 1, 10), None]}  # a time without a zone is UTC
    )  # fmt: skip
    expected = [
        FeedbackItem(key="1001", label="malignant", time=datetime(2026, 12, 1, 10, tzinfo=UTC)),
        FeedbackItem(key="p-2", label="benign"),
    ]
    assert read_labels(csv, "s3://lake/labels/a.csv") == expected
    assert read_labels(jsonl, "s3://lake/labels/a.jsonl") == expected
    assert read_labels(parquet, "s3://lake/labels/a.parquet") == expected


def test_keys_are_text_as_written() -> None:
    assert [item.key for item in read_labels(b"key,label\n007,a\n", "s3://lake/labels/a.csv")] == ["007"]
    assert [item.key for item in read_labels(b'{"key": 7, "label": "a"}\n', "s3://lake/labels/a.jsonl")] == ["7"]


def test_whole_number_labels_are_class_names_and_other_numbers_values() -> None:
    items = read_labels(b"key,label\na,1\nb,0\n", "s3://lake/labels/a.csv")
    assert [item.label for item in items] == ["1", "0"]  # as a classifier names its classes
    items = read_labels(b"key,label\na,1.5\n", "s3://lake/labels/a.csv")
    assert [item.label for item in items] == [1.5]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("a.txt", b"key,label\na,1\n", "a label file ends in .parquet, .csv"),
        ("a.csv", b"id,label\na,1\n", "has no key column (it has id, label)"),
        ("a.csv", b"key,truth\na,1\n", "has no label column"),
        ("a.csv", b"key,label\na,1\n,0\n", "row 2: no key"),
        ("a.csv", b"key,label\na,\n", "row 1: no label"),
        ("a.csv", b"key,label,time\na,1,yesterday\n", "row 1"),
        ("a.csv", b"", "is empty"),
        ("a.parquet", b"not parquet", "is not readable as parquet"),
    ],
)
def test_a_broken_file_is_refused_naming_it_and_what_is_wrong(name: str, body: bytes, message: str) -> None:
    with pytest.raises(DataError, match="s3://lake/labels/" + name) as raised:
        read_labels(body, f"s3://lake/labels/{name}")
    assert message in str(raised.value)


class FeedbackBucket(MemoryBucket):
    """The artifacts bucket with stored feedback, as the monitor writes it."""

    def put_feedback(self, items: list[FeedbackItem], received: datetime, *, caller: str | None = None) -> str:
        key = f"{layout.FEEDBACK_PREFIX}{len(self.objects)}.jsonl"
        self.objects[key] = b"".join(
            orjson.dumps(StoredFeedback(received=received, caller=caller, **item.model_dump()).model_dump(mode="json"))
            + b"\n"
            for item in items
        )
        return key

    def stored(self) -> list[StoredFeedback]:
        return [
            StoredFeedback.model_validate_json(line)
            for key, body in sorted(self.objects.items())
            if key.startswith(layout.FEEDBACK_PREFIX)
            for line in body.splitlines()
        ]


def test_each_file_is_taken_once_a_replaced_one_again_and_a_refused_one_remembered() -> None:
    lake, artifacts = MemoryBucket(), FeedbackBucket()
    lake.objects.update({
        "labels/dt=2026-12-06/a.csv": b"key,label\np-1,benign\np-2,malignant\n",
        "labels/b.csv": b"id,label\np-3,benign\n",
        "labels/_SUCCESS": b"",
    })  # fmt: skip
    source = MemorySource(lake, uploaded=dict.fromkeys(lake.objects, NOW))
    first = take_labels(source, artifacts, LABELS)
    assert (first.objects_read, first.labels) == (2, 2)
    assert len(first.refused) == 1 and "s3://lake/labels/b.csv has no key column" in first.refused[0]
    assert [(s.key, s.label, s.received) for s in artifacts.stored()] == [
        ("p-1", "benign", NOW),
        ("p-2", "malignant", NOW),
    ]
    ledger = LabelLedger.model_validate_json(artifacts.get(layout.LABELS_LEDGER_KEY))
    assert ledger.objects["s3://lake/labels/b.csv"].refused is not None

    again = take_labels(source, artifacts, LABELS)
    assert (again.objects_read, again.labels, again.refused) == (0, 0, [])  # nothing new: nothing read

    lake.objects["labels/b.csv"] = b"key,label\np-3,benign\n"  # the refused file, fixed
    lake.objects["labels/dt=2026-12-06/a.csv"] = b"key,label\np-2,benign\n"  # a label corrected
    source.uploaded = dict.fromkeys(lake.objects, datetime(2026, 12, 7, 10, tzinfo=UTC))
    fixed = take_labels(source, artifacts, LABELS)
    assert (fixed.objects_read, fixed.labels, fixed.refused) == (2, 2, [])
    join = LabelJoin(artifacts.stored())
    assert join.counts().duplicates == 1  # p-2 labelled twice: the later label wins
    served = datetime(2026, 12, 6, tzinfo=UTC)
    assert join.match("req", 0, "p-2", served).label == "benign"


def test_label_files_need_a_key_declared() -> None:
    with pytest.raises(ValueError, match=r"data\.labels needs data\.key"):
        DataSource(labels="s3://lake/labels/")
    assert DataSource(labels="s3://lake/labels/", key="id").labels_location() == LABELS


def test_a_file_with_a_class_the_live_model_does_not_know_is_refused_whole(bundle: Bundle) -> None:
    lake, artifacts = MemoryBucket(), FeedbackBucket()
    lake.objects["labels/a.csv"] = b"key,label\np-1,benign\np-2,Malignant\np-3,new\n"
    report = take_labels(MemorySource(lake), artifacts, LABELS, bundle.manifest)
    assert report.refused == [
        "s3://lake/labels/a.csv row 2: not one of the live model's classes (benign, malignant) (2 such row(s) in the "
        "file)"
    ]
    assert artifacts.stored() == []  # nothing of it taken


def test_labels_are_conformed_to_the_live_models_answers() -> None:
    items = [FeedbackItem(key="a", label=1.0), FeedbackItem(key="b", label="0")]
    assert [i.label for i in conform_labels(items, task="classification", classes=("0", "1"))] == ["1", "0"]
    assert conform_labels([FeedbackItem(key="a", label=2.5)], task="regression", classes=None)[0].label == 2.5
    with pytest.raises(InvalidRequest, match="a regression model's label is a number"):
        conform_labels([FeedbackItem(key="a", label="high")], task="regression", classes=None)


def test_a_file_dated_after_it_landed_is_refused() -> None:
    lake, artifacts = MemoryBucket(), FeedbackBucket()
    lake.objects["labels/a.csv"] = b"key,label,time\np-1,benign,2999-01-01T00:00:00Z\n"
    report = take_labels(MemorySource(lake), artifacts, LABELS)
    assert report.refused == ["s3://lake/labels/a.csv row 1: a label's time cannot be later than its arrival"]
    assert artifacts.stored() == []
