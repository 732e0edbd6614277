"""The artifacts bucket and a source over it, in memory, for the tests of the lake that need no S3."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.core.data_source import S3Location
from functions.core.errors import ChangedMeanwhile
from functions.lake.ledger import ListedObject


@dataclass
class MemoryBucket:
    """A TableStore: objects by key."""

    objects: dict[str, bytes] = field(default_factory=dict)

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def put(self, key: str, body: bytes, content_type: str = "") -> None:
        self.objects[key] = body

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        return self.objects[key], hashlib.md5(self.objects[key]).hexdigest()

    def put_unless_changed(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> None:
        current = hashlib.md5(self.objects[key]).hexdigest() if key in self.objects else None
        if current != etag:
            raise ChangedMeanwhile(key)
        self.objects[key] = body


UPLOADED = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class MemorySource:
    """A SourceReader over a MemoryBucket (ETag: the MD5 of the bytes, as S3's for one-part uploads)."""

    bucket: MemoryBucket
    uploaded: dict[str, datetime] = field(default_factory=dict)  # by key; 2026-12-01 when not named

    def list(self, location: S3Location) -> Iterator[ListedObject]:
        for key in sorted(k for k in self.bucket.objects if k.startswith(location.prefix)):
            body = self.bucket.objects[key]
            yield ListedObject(
                uri=f"s3://{location.bucket}/{key}", bucket=location.bucket, key=key,
                etag=hashlib.md5(body).hexdigest(), last_modified=self.uploaded.get(key, UPLOADED), size=len(body),
            )  # fmt: skip

    def get(self, listed: ListedObject) -> tuple[bytes, str | None]:
        return self.bucket.objects[listed.key], None
