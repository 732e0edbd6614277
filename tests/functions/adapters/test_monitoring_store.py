"""Capture streamed from S3: whole lines back whatever the read size, and the rows of the requests asked for."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody

from functions.adapters import factory
from functions.adapters.monitoring_store import READ_CHUNK_BYTES, S3MonitoringStore
from functions.core.feedback import LABEL_FILES, FeedbackItem
from stage.names import ResourceNames
from tests.capture_lines import capture_lines

HOUR = datetime(2026, 1, 5, 9, tzinfo=UTC)


class _OneObject:
    """An S3 client holding one object, served as botocore serves a body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        return {"Body": StreamingBody(io.BytesIO(self.body), len(self.body))}


def test_capture_lines_come_back_whole_across_read_chunks_and_blank_lines_are_dropped() -> None:
    lines = [b"x" * n for n in (10, READ_CHUNK_BYTES - 3, 5, READ_CHUNK_BYTES + 7, 1)]
    body = b"\n".join(lines[:2]) + b"\n\n  \n" + b"\n".join(lines[2:])  # no newline after the last line
    store = S3MonitoringStore(_OneObject(body), "bucket")
    assert list(store.capture_lines("capture/2026/01/01/00/part")) == lines


def test_capture_rows_of_some_requests_are_those_rows_of_every_row(aws: None, names: ResourceNames) -> None:
    store = factory.monitoring_store(names.artifacts_bucket)
    rows = [{"x": float(i)} for i in range(5)]
    lines = []
    for request in ("a", "b", "c"):
        lines += capture_lines(request_id=request, time="2026-01-05T09:10:00+00:00", model_version="v1",
                               features=rows, rows_per_line=2)  # fmt: skip
    store.put_capture(HOUR, "part", lines)
    start, end = HOUR, datetime(2026, 1, 5, 10, tzinfo=UTC)
    every = list(store.capture_rows(start, end))
    some = list(store.capture_rows(start, end, {"a", "c", "unknown"}))
    assert len(every) == 15 and some == [row for row in every if row.request_id in {"a", "c"}]
    assert [(row.request_id, row.row) for row in some[:5]] == [("a", i) for i in range(5)]


def test_one_caller_s_labels_can_be_purged_and_no_one_else_s(aws: None, names: ResourceNames) -> None:
    store = factory.monitoring_store(names.artifacts_bucket)
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    store.put_feedback([FeedbackItem(key=f"p-{i}", label="benign") for i in range(3)], now, caller="key:mallory")
    store.put_feedback([FeedbackItem(key="p-9", label="malignant")], now, caller="key:alice")
    store.put_feedback([FeedbackItem(key="p-8", label="benign")], now, caller=LABEL_FILES)
    assert store.purge_feedback("key:mallory") == (1, 3)
    assert sorted((s.caller, s.key) for s in store.feedback()) == [("data.labels", "p-8"), ("key:alice", "p-9")]
    assert store.purge_feedback("key:nobody") == (0, 0)


@pytest.mark.parametrize("versioned", [True, False])
def test_erasing_a_row_key_removes_its_rows_labels_and_older_versions_and_nothing_else(
    aws: None, names: ResourceNames, versioned: bool
) -> None:
    s3 = boto3.client("s3")
    if versioned:  # as the stack makes the artifacts bucket
        s3.put_bucket_versioning(Bucket=names.artifacts_bucket, VersioningConfiguration={"Status": "Enabled"})
    store = factory.monitoring_store(names.artifacts_bucket)
    hour = datetime(2026, 12, 7, 9, tzinfo=UTC)
    features = [{"x": float(i)} for i in range(5)]
    lines = capture_lines(request_id="r1", time=hour.isoformat(), model_version="v", features=features,
                          keys=["a", "erase-me", "b", "erase-me", "c"], labels=["y"] * 5,
                          probabilities=[{"y": 0.9 - i / 10, "n": 0.1 + i / 10} for i in range(5)])  # fmt: skip
    lines += capture_lines(request_id="r2", time=hour.isoformat(), model_version="v", features=[{"x": 9.0}],
                           keys=["erase-me"])  # fmt: skip
    key = store.put_capture(hour, "part-0", [*lines, b"not a record"])
    store.put_feedback([FeedbackItem(key="erase-me", label="y"), FeedbackItem(key="a", label="y")], hour)
    store.put_feedback([FeedbackItem(key="erase-me", label="n")], hour)

    erased = store.erase_key("erase-me")
    assert (erased.capture_objects, erased.captured_rows, erased.feedback_objects, erased.labels) == (1, 3, 2, 2)
    rows = list(store.capture_rows(hour, hour + timedelta(hours=1)))
    # The other rows keep their request ids and row numbers (labels by request id still find them).
    assert [(r.request_id, r.row, r.key, r.features["x"]) for r in rows] == [
        ("r1", 0, "a", 0.0), ("r1", 2, "b", 2.0), ("r1", 4, "c", 4.0)
    ]  # fmt: skip
    assert [r.probabilities for r in rows] == [{"y": 0.9 - i / 10, "n": 0.1 + i / 10} for i in (0, 2, 4)]
    assert b"not a record" in store.get(key)
    assert [s.key for s in store.feedback()] == ["a"]
    # No version of any object still holds the key.
    for version in s3.list_object_versions(Bucket=names.artifacts_bucket).get("Versions", []):
        body = s3.get_object(Bucket=names.artifacts_bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert b"erase-me" not in body["Body"].read(), version["Key"]
    assert store.erase_key("erase-me").captured_rows == 0
