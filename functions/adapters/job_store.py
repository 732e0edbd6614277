"""Async job requests and results as S3 objects; one result per job through a conditional write."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code, get_bytes
from functions.core import layout
from functions.core.jobs import JobRequest, JobResult

_ALREADY_WRITTEN = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


class S3JobStore:
    """Job requests, results and poison bodies: `async/requests/`, `async/results/`, `async/poison/`."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def put_request(self, request: JobRequest) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=layout.async_request_key(request.job_id),
            Body=request.model_dump_json(),
            ContentType="application/json",
        )

    def get_request(self, job_id: str) -> JobRequest | None:
        raw = self._get(layout.async_request_key(job_id))
        return None if raw is None else JobRequest.model_validate_json(raw)

    def put_result(self, result: JobResult) -> bool:
        # If-None-Match: "*" makes S3 refuse the write when a result exists: a redelivered
        # message, or the worker and the dead-letter fallback racing, still leave one result.
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=layout.async_result_key(result.job_id),
                Body=result.model_dump_json(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) in _ALREADY_WRITTEN:
                return False
            raise
        return True

    def put_poison(self, message_id: str, body: str) -> str:
        """Keep a message that names no job, byte for byte; returns its key."""
        key = layout.async_poison_key(message_id)
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=body.encode("utf-8", "surrogatepass"), ContentType="text/plain"
        )
        return key

    def get_result(self, job_id: str) -> JobResult | None:
        raw = self._get(layout.async_result_key(job_id))
        return None if raw is None else JobResult.model_validate_json(raw)

    def _get(self, key: str) -> bytes | None:
        try:
            return get_bytes(self._s3, self._bucket, key)
        except KeyError:
            return None
