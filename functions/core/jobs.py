"""Async jobs: the message on the queue, the stored request, the one result, and the store's contract.

The queue carries only the job id (a claim check): a /predict body may be up to
MAX_BODY_BYTES (1 MB by default), over SQS's 256 KB message limit. The request
is stored under the id before the message is sent, so a job id is known
(pending) from the moment the client gets it, and unknown ids are 404s.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"

# Why the dead-letter fallback answered: the worker failed on every receive the redrive policy allows.
REASON_WORKER_FAILED = "async_worker_failed"


def new_job_id() -> str:
    """A fresh, unguessable job id."""
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobMessage(_Frozen):
    """The body of one message on the requests queue."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)


class JobRequest(_Frozen):
    """A job as accepted by POST /predict/async: the rows, already validated against the live spec."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)
    instances: list[dict[str, Any]] = Field(min_length=1)
    submitted_at: datetime
    validated_by: str | None = Field(description="The live version whose feature spec accepted the rows.")
    caller: str | None = Field(None, description="Who submitted it, as the front door authenticated them.")


class JobResult(_Frozen):
    """The one answer to a job: scored by the worker (done) or by plan B (fallback, with the reason)."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)
    status: Literal["done", "fallback"]
    model_version: str | None
    predictions: list[dict[str, Any]]
    reason: str | None = None
    answered_by: Literal["worker", "dead_letter_fallback"]
    completed_at: datetime
    caller: str | None = Field(None, description="The request's submitter: whom GET answers it to.")


class JobStore(Protocol):
    """Where requests and results live; `put_result` writes at most once per job id."""

    def put_request(self, request: JobRequest) -> None: ...

    def get_request(self, job_id: str) -> JobRequest | None: ...

    def put_result(self, result: JobResult) -> bool:
        """Store `result` unless the job already has one; True when this call wrote it."""
        ...

    def get_result(self, job_id: str) -> JobResult | None: ...


class JobQueue(Protocol):
    """The requests queue."""

    def send(self, message: JobMessage) -> None: ...
