"""Batch scoring's objects in the artifacts bucket: inputs, outputs, the ledger and run manifests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class S3BatchStore:
    """Lists, reads and writes objects under batch/ in one bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def list_objects(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, ETag) of every object under `prefix`."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], item["ETag"]

    def get(self, key: str) -> tuple[bytes, str]:
        """An object's bytes and ETag."""
        response = self._s3.get_object(Bucket=self.bucket, Key=key)
        return bytes(response["Body"].read()), str(response["ETag"])

    def put(self, key: str, body: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=dict(metadata or {})
        )
