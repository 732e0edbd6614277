"""Ground truth sent to POST /feedback, and how it is stored and joined with capture. AWS-free."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from functions.core.capture import CapturedRow
from functions.core.errors import FieldError, InvalidRequest
from functions.core.features import MAX_ROW_KEY_LENGTH
from functions.core.layout import FEEDBACK_PREFIX

# A label names (request id, row), or ("", key) when it names the row by its key.
LabelRef = tuple[str, int] | tuple[str, str]


class FeedbackItem(BaseModel):
    """The true label (classification) or value (regression) of one served row, named by request id and row or
    by the row's key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(
        None, min_length=1, max_length=128, description="The request_id /predict answered with (or send `key`)."
    )
    row: int = Field(0, ge=0, description="Index of the row in that request (0 for a one-row request).")
    key: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ROW_KEY_LENGTH,
        description="The row's key, as sent with the row in the stage's data.key field (instead of request_id).",
    )
    label: str | FiniteFloat = Field(description="The true class, or the true (finite) value.")
    time: AwareDatetime | None = Field(
        None, description="When the label became true; of two labels for one row the later wins (default: arrival)."
    )

    @model_validator(mode="after")
    def _names_one_row(self) -> Self:
        if (self.request_id is None) == (self.key is None):
            raise ValueError("name the row by request_id (and row) or by key, one of the two")
        if self.key is not None and self.row:
            raise ValueError("row is for request_id; a key names one row already")
        return self

    @property
    def ref(self) -> LabelRef:
        """What the label names: (request id, row), or ("", key) for a keyed label."""
        return (self.request_id, self.row) if self.request_id is not None else ("", self.key or "")


class FeedbackRequest(BaseModel):
    """A batch of ground truth."""

    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackItem] = Field(min_length=1, max_length=1000)


class StoredFeedback(FeedbackItem):
    """One label as stored under feedback/, with when it was received."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    label: str | float
    received: datetime
    caller: str | None = Field(
        None, description="Who sent it (as the front door authenticated them); LABEL_FILES for data.labels files."
    )
    source: str | None = Field(
        None, exclude=True, description="The feedback object it was read from (set on read, never stored)."
    )

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Of two labels for one row, the greater wins: later truth, then later arrival, then larger text."""
        return (self.time or self.received, self.received, str(self.label))


class FeedbackResponse(BaseModel):
    """What was stored. Labels join their captured rows in the monitor, which counts those it cannot join."""

    accepted: int = Field(description="Items stored.")
    duplicates: list[FeedbackItem] = Field(
        description="Items repeating an earlier row (request_id and row, or key) of the same batch; the first is kept."
    )


def feedback_key(received: datetime, batch_id: str) -> str:
    """Key of one stored feedback batch, partitioned by the hour it arrived (UTC)."""
    return f"{FEEDBACK_PREFIX}{received:%Y/%m/%d/%H}/{batch_id}.jsonl"


def deduplicate(items: Sequence[FeedbackItem]) -> tuple[list[FeedbackItem], list[FeedbackItem]]:
    """(kept, duplicates): the first item naming each row is kept, the rest are duplicates."""
    seen: set[LabelRef] = set()
    kept: list[FeedbackItem] = []
    duplicates: list[FeedbackItem] = []
    for item in items:
        (duplicates if item.ref in seen else kept).append(item)
        seen.add(item.ref)
    return kept, duplicates


# A label arriving more than this long after the prediction it labels is counted as late (and used all the same).
LATE_AFTER = timedelta(hours=24)
# The caller of the labels taken from the stage's label files (data.labels): the user's own systems, which
# may label any prediction; a caller of the API may label only the predictions it asked for.
LABEL_FILES = "data.labels"


class LabelCounts(BaseModel):
    """What became of the labels a join looked at."""

    labels: int = Field(description="Rows labelled (each row once, its latest label).")
    matched: int = Field(description="Labels that found the captured prediction they label.")
    duplicates: int = Field(description="Labels replaced by a later one for the same row.")
    unknown: int = Field(
        description="Labels whose request id or key matched no captured row (yet): kept, and joined once it does."
    )
    late: int = Field(description="Matched labels that arrived more than LATE_AFTER (24 h) after the prediction.")
    foreign: int = Field(
        0, description="Labels naming a prediction another caller asked for: never joined (nobody labels others' rows)."
    )


class LabelFilesReport(BaseModel):
    """What one pass over the label files' prefix (data.labels) took into feedback."""

    objects_read: int = Field(description="New or changed label files read.")
    labels: int = Field(description="Labels they held, now stored feedback.")
    refused: list[str] = Field(description="Why each refused file was refused (read again once replaced).")


class LabelJoin:
    """The latest label of each row (by request id and row, or by key), matched against captured rows.

    Rows are offered in capture order; a keyed label joins the first captured row carrying its key. A label
    sent through the API joins only a row its own caller was served: each caller's latest label of a row is
    kept apart, so a label naming another caller's row neither joins nor hides that caller's own label.
    """

    def __init__(self, stored: Iterable[StoredFeedback]) -> None:
        latest: dict[LabelRef, dict[str | None, StoredFeedback]] = {}
        seen = 0
        for item in stored:
            seen += 1
            by_caller = latest.setdefault(item.ref, {})
            current = by_caller.get(item.caller)
            if current is None or item.order > current.order:
                by_caller[item.caller] = item
        self._by_request = {ref: v for ref, v in latest.items() if ref[0]}
        self._by_key = {str(ref[1]): v for ref, v in latest.items() if not ref[0]}
        self._duplicates = seen - sum(len(v) for v in latest.values())
        self._labels = len(latest)
        self._matched = self._late = self._foreign = 0
        self.request_ids = {str(request_id) for request_id, _ in self._by_request}
        self.keys = set(self._by_key)

    def __bool__(self) -> bool:
        return bool(self._by_request or self._by_key)

    def _pending(self) -> list[StoredFeedback]:
        return [item for group in (*self._by_request.values(), *self._by_key.values()) for item in group.values()]

    def earliest_received(self) -> datetime:
        return min(item.received for item in self._pending())

    def latest_received(self) -> datetime:
        return max(item.received for item in self._pending())

    def match(
        self, request_id: str, row: int, key: str | None, served: datetime, caller: str | None = None
    ) -> StoredFeedback | None:
        """The label of this captured row (served to `caller`), if one is pending; then it is matched, once."""
        group = self._by_request.pop((request_id, row), None)
        if group is None and key is not None:
            group = self._by_key.pop(key, None)
        if group is None:
            return None
        allowed = [i for i in group.values() if i.caller in (None, LABEL_FILES, caller) or caller is None]
        self._foreign += len(group) - len(allowed)
        if not allowed:
            return None
        item = max(allowed, key=lambda i: i.order)
        self._duplicates += len(allowed) - 1
        self._matched += 1
        if item.received - served > LATE_AFTER:
            self._late += 1
        return item

    def joined(self, rows: Iterable[CapturedRow]) -> Iterator[tuple[CapturedRow, StoredFeedback]]:
        """Each of the captured `rows` (in capture order) that a pending label matches, with that label."""
        for row in rows:
            item = self.match(row.request_id, row.row, row.key, row.time, row.caller)
            if item is not None:
                yield row, item

    def counts(self) -> LabelCounts:
        return LabelCounts(
            labels=self._labels,
            matched=self._matched,
            duplicates=self._duplicates,
            unknown=len(self._by_request) + len(self._by_key),
            late=self._late,
            foreign=self._foreign,
        )


class FeedbackStore(Protocol):
    """Where feedback is kept (the monitoring store)."""

    def put_feedback(self, items: list[FeedbackItem], received: datetime, *, caller: str | None = None) -> str: ...


# A label's `time` may run this far ahead of its arrival (clock skew), no further: a future time would make it
# outrank every later label of its row.
CLOCK_SKEW = timedelta(minutes=5)


def future_labels(items: Sequence[FeedbackItem], arrived: datetime, *, loc: str = "items") -> list[FieldError]:
    """The items whose `time` is later than their arrival (beyond CLOCK_SKEW)."""
    return [
        FieldError((loc, index, "time"), "future_time", "a label's time cannot be later than its arrival")
        for index, item in enumerate(items)
        if item.time is not None and item.time > arrived + CLOCK_SKEW
    ]


def conform_labels(
    items: Sequence[FeedbackItem], *, task: str, classes: Sequence[str] | None, loc: str = "items"
) -> list[FeedbackItem]:
    """The labels as the live model names its answers, or InvalidRequest naming each item whose label it cannot have.

    A classifier's label must be one of its classes (a whole number is the class of that name: 1 is "1"), so no
    label can invent a class; a regression's must be a number. Values are never quoted back.
    """
    conformed, errors = [], []
    known = frozenset(classes or ())
    for index, item in enumerate(items):
        label = item.label
        if task == "classification":
            label = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)
            if label not in known:
                rule = f"not one of the live model's classes ({', '.join(sorted(known))})"
                errors.append(FieldError((loc, index, "label"), "label_class", rule))
        elif not isinstance(label, float):
            errors.append(FieldError((loc, index, "label"), "label_value", "a regression model's label is a number"))
        conformed.append(item if label == item.label else item.model_copy(update={"label": label}))
    if errors:
        shown = errors[:20]
        summary = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in shown[:3])
        raise InvalidRequest(f"invalid labels: {summary}", shown)
    return conformed


def record_feedback(
    request: FeedbackRequest,
    *,
    store: FeedbackStore,
    now: datetime,
    task: str | None,
    classes: Sequence[str] | None,
    caller: str | None = None,
) -> FeedbackResponse:
    """Check the batch's labels against the live model (`task` None: no model is live, nothing to check against),
    store it (the first label of each row kept) and answer with counts. Nothing reads the capture here: the monitor
    joins labels to their rows, and counts those it cannot join."""
    future = future_labels(request.items, now)
    if future:
        raise InvalidRequest(f"invalid labels: items.{future[0].loc[1]}.time: {future[0].msg}", future)
    kept, duplicates = deduplicate(request.items)
    if task is not None:
        kept = conform_labels(kept, task=task, classes=classes)
    store.put_feedback(kept, now, caller=caller)
    return FeedbackResponse(accepted=len(kept), duplicates=duplicates)
