"""Capture lines streamed from S3: whole lines back, whatever the read size."""

from __future__ import annotations

import io
from typing import Any

from botocore.response import StreamingBody

from functions.adapters.monitoring_store import READ_CHUNK_BYTES, S3MonitoringStore


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
