"""The training data's source objects in S3: listed with their ETags, read exactly as listed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code
from functions.core.data_source import S3Location
from functions.lake.ledger import ListedObject
from functions.lake.tables import DataError


class S3Source:
    """Lists the declared prefixes and reads objects, each only if it is still the version that was listed."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def list(self, location: S3Location) -> Iterator[ListedObject]:
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield ListedObject(
                        uri=f"s3://{location.bucket}/{item['Key']}",
                        bucket=location.bucket,
                        key=item["Key"],
                        etag=str(item["ETag"]).strip('"'),
                        last_modified=item["LastModified"],
                        size=int(item["Size"]),
                    )
        except ClientError as exc:
            raise DataError(f"cannot list {location.uri}: {error_code(exc)} ({exc})") from exc

    def get(self, listed: ListedObject) -> tuple[bytes, str | None]:
        """The object's bytes and version id; DataError when it changed or went since it was listed."""
        try:
            answer = self._s3.get_object(Bucket=listed.bucket, Key=listed.key, IfMatch=f'"{listed.etag}"')
        except ClientError as exc:
            raise DataError(
                f"cannot read {listed.uri} as listed (ETag {listed.etag}): {error_code(exc)}; the next run reads it "
                "again"
            ) from exc
        return bytes(answer["Body"].read()), answer.get("VersionId")
