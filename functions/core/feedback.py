"""Ground truth sent to POST /feedback, and how it is stored and joined with capture. AWS-free."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from functions.core.layout import FEEDBACK_PREFIX


class FeedbackItem(BaseModel):
    """The true label (classification) or value (regression) of one served row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=128, description="The request_id /predict answered with.")
    row: int = Field(0, ge=0, description="Index of the row in that request (0 for a one-row request).")
    label: str | FiniteFloat = Field(description="The true class, or the true (finite) value.")


class FeedbackRequest(BaseModel):
    """A batch of ground truth."""

    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackItem] = Field(min_length=1, max_length=1000)


class StoredFeedback(BaseModel):
    """One feedback item as stored under feedback/, with when it was received."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    row: int
    label: str | float
    received: datetime


class FeedbackResponse(BaseModel):
    accepted: int = Field(description="Items stored.")
    duplicates: list[FeedbackItem] = Field(
        description="Items repeating an earlier (request_id, row) of the same batch; the first one is kept."
    )
    unknown: list[str] = Field(
        description="Request ids with no captured row yet (not sampled, or capture not delivered): "
        "stored anyway and joined once their capture arrives."
    )


def feedback_key(received: datetime, batch_id: str) -> str:
    """Key of one stored feedback batch, partitioned by the hour it arrived (UTC)."""
    return f"{FEEDBACK_PREFIX}{received:%Y/%m/%d/%H}/{batch_id}.jsonl"


def deduplicate(items: Sequence[FeedbackItem]) -> tuple[list[FeedbackItem], list[FeedbackItem]]:
    """(kept, duplicates): the first item of each (request_id, row) is kept, the rest are duplicates."""
    seen: set[tuple[str, int]] = set()
    kept: list[FeedbackItem] = []
    duplicates: list[FeedbackItem] = []
    for item in items:
        key = (item.request_id, item.row)
        (duplicates if key in seen else kept).append(item)
        seen.add(key)
    return kept, duplicates


def latest_labels(stored: Iterable[StoredFeedback]) -> dict[tuple[str, int], StoredFeedback]:
    """One label per (request_id, row): the last received wins; ties go to the larger label text."""
    latest: dict[tuple[str, int], StoredFeedback] = {}
    for item in stored:
        key = (item.request_id, item.row)
        current = latest.get(key)
        if current is None or (item.received, str(item.label)) > (current.received, str(current.label)):
            latest[key] = item
    return latest


# How far back a request id is looked up in the capture when feedback arrives.
LOOKUP_HOURS = 48


class FeedbackStore(Protocol):
    """Where feedback is kept and served request ids are looked up (the monitoring store)."""

    def put_feedback(self, items: list[FeedbackItem], received: datetime) -> str: ...
    def captured_request_ids(self, start: datetime, end: datetime) -> set[str]: ...


def record_feedback(
    request: FeedbackRequest, *, store: FeedbackStore, now: datetime, lookup: timedelta = timedelta(hours=LOOKUP_HOURS)
) -> FeedbackResponse:
    """Store the batch (first of each (request_id, row) kept); name the ids not captured (yet)."""
    kept, duplicates = deduplicate(request.items)
    store.put_feedback(kept, now)
    captured = store.captured_request_ids(now - lookup, now + timedelta(hours=1))
    unknown = sorted({item.request_id for item in kept} - captured)
    return FeedbackResponse(accepted=len(kept), duplicates=duplicates, unknown=unknown)
