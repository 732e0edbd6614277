"""The async use cases: accept a job, score it (worker), answer it with plan B (dead letters), report it.

Scoring is `service.predict`, the /predict use case, so an async answer equals
the synchronous one for the same rows and live model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from functions.core.errors import InvalidRequest
from functions.core.jobs import (
    REASON_WORKER_FAILED,
    JobMessage,
    JobQueue,
    JobRequest,
    JobResult,
    JobStore,
    new_job_id,
    now,
)
from functions.core.manifest import FallbackAnswer
from functions.core.predictor import fallback_predictions
from functions.inference import service
from functions.inference.live_model import Serving


class JobNotFound(KeyError):
    """No job has this id (never submitted, or expired)."""


class JobRequestMissing(RuntimeError):
    """A queued job's stored request is gone: nothing can score it, the message stays a dead letter."""


class JobRowsRefused(ValueError):
    """The live feature spec refuses a queued job's rows (it changed since they were accepted)."""


def submit(
    serving: Serving, rows: Sequence[Mapping[str, Any]], *, store: JobStore, queue: JobQueue, caller: str | None = None
) -> str:
    """Validate `rows` as /predict does (raises InvalidRequest: nothing is queued), store and queue the job."""
    if serving.predictor is not None:
        serving.predictor.encode(rows)
    job_id = new_job_id()
    store.put_request(
        JobRequest(
            job_id=job_id,
            instances=[dict(row) for row in rows],
            submitted_at=now(),
            validated_by=serving.version,
            caller=caller,
        )
    )
    queue.send(JobMessage(job_id=job_id))
    return job_id


def process(message: JobMessage, serving: Serving, *, store: JobStore) -> JobResult:
    """Score one job with the live model (plan B if it cannot answer) and store the result once.

    Returns the stored result: a redelivered message finds it and does no work. Anything
    that raises (the request unreadable, rows the live spec now refuses: JobRowsRefused, S3
    failing) fails this receive; after the redrive policy's receives the dead-letter fallback answers.
    """
    request = _pending(message, store)
    if isinstance(request, JobResult):
        return request
    try:
        outcome = service.predict(serving, request.instances)
    except InvalidRequest as exc:
        # The refusal's messages quote the rows' values; what fails a receive is logged, so it names places only.
        places = ", ".join(".".join(str(part) for part in error.loc) for error in exc.errors)
        raise JobRowsRefused(f"job {message.job_id}: the live feature spec refuses its rows at {places}") from None
    result = JobResult(
        job_id=message.job_id,
        status="fallback" if outcome.fallback_reason else "done",
        model_version=outcome.version,
        predictions=outcome.predictions,
        reason=outcome.fallback_reason,
        answered_by="worker",
        completed_at=now(),
        caller=request.caller,
    )
    return result if store.put_result(result) else _stored(store, message.job_id)


def _pending(message: JobMessage, store: JobStore) -> JobResult | JobRequest:
    """The job's stored result when it has one (a redelivery), else its request; JobRequestMissing without either."""
    existing = store.get_result(message.job_id)
    if existing is not None:
        return existing
    request = store.get_request(message.job_id)
    if request is None:
        raise JobRequestMissing(f"job {message.job_id} has no stored request")
    return request


def answer_dead_letter(
    message: JobMessage, *, store: JobStore, fallback: FallbackAnswer | None, version: str | None
) -> JobResult:
    """Store plan B for a job the worker could not score: the declared fallback answer, flagged with the reason.

    Raises JobRequestMissing when the request is gone (the row count is unknown): such a
    message stays in the dead-letter queue, where the DLQ-depth alarm sees it.
    """
    request = _pending(message, store)
    if isinstance(request, JobResult):
        return request
    result = JobResult(
        job_id=message.job_id,
        status="fallback",
        model_version=version,
        predictions=fallback_predictions(fallback, REASON_WORKER_FAILED, len(request.instances)),
        reason=REASON_WORKER_FAILED,
        answered_by="dead_letter_fallback",
        completed_at=now(),
        caller=request.caller,
    )
    return result if store.put_result(result) else _stored(store, message.job_id)


@dataclass(frozen=True)
class JobStatus:
    """What GET /predict/async/{job_id} answers."""

    job_id: str
    status: Literal["pending", "done", "fallback"]
    result: JobResult | None


def status(job_id: str, *, store: JobStore, caller: str | None = None) -> JobStatus:
    """The job's state; raises JobNotFound for an id that was never accepted (or has expired), or that another
    caller submitted (a job's rows and answers are its submitter's: a known id is no key to them)."""
    result = store.get_result(job_id)  # a done job is one read: the result names its submitter too
    owner = result if result is not None else store.get_request(job_id)
    if owner is None or (owner.caller is not None and caller is not None and owner.caller != caller):
        raise JobNotFound(job_id)
    return JobStatus(job_id, result.status, result) if result is not None else JobStatus(job_id, "pending", None)


def _stored(store: JobStore, job_id: str) -> JobResult:
    stored = store.get_result(job_id)
    if stored is None:  # the conditional write refused, so a result exists; S3 reads are strongly consistent
        raise RuntimeError(f"job {job_id}: the result store refused a write but holds no result")
    return stored
