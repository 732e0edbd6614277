"""Reading S3 objects the way every store here needs: bytes, or KeyError when the key is absent."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# What S3 answers for a missing key: GetObject says NoSuchKey, HeadObject a bare 404.
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def error_code(exc: ClientError) -> str:
    """The error code of an AWS error."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def get_bytes(s3: Any, bucket: str, key: str) -> bytes:
    """The object's bytes; KeyError when it does not exist."""
    return get_tagged(s3, bucket, key)[0]


def get_tagged(s3: Any, bucket: str, key: str) -> tuple[bytes, str]:
    """The object's bytes and ETag (for a conditional write after it); KeyError when it does not exist."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            raise KeyError(key) from exc
        raise
    return bytes(answer["Body"].read()), str(answer["ETag"])
