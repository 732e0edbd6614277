"""Ground truth that arrives as files: rows of (key, label, time) under the stage's data.labels prefix.

Each monitor cycle lists the prefix and takes only the objects that are new or changed since
the last cycle (by ETag, as the training data), turning their rows into stored feedback keyed
by the row key. From there a label joins the captured prediction of its key for live quality,
and becomes a labelled training row, exactly as a label sent to POST /feedback by key.

A file that cannot be read (unknown format, no `key` or `label` column, a row without a key or
label) is refused whole, reported and remembered with its ETag: it is not read again until it
is replaced, and nothing of it is half-taken. The file itself is left where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from functions.core import layout
from functions.core.data_source import S3Location
from functions.core.errors import InvalidRequest
from functions.core.feedback import LABEL_FILES, FeedbackItem, LabelFilesReport, conform_labels, future_labels
from functions.core.manifest import Manifest
from functions.lake.ledger import ListedObject, TableColumn
from functions.lake.tables import DataError, read_object

KEY_COLUMN, LABEL_COLUMN, TIME_COLUMN = "key", "label", "time"
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


class LabelObject(BaseModel):
    """One label file as taken: its ETag, its rows, or why it was refused."""

    etag: str
    rows: int = 0
    refused: str | None = None


class LabelLedger(BaseModel):
    """The label files already taken, by URI."""

    objects: dict[str, LabelObject] = {}


class Listing(Protocol):
    """functions.lake.ingest.SourceReader's two methods: this module is in the monitor package, which has no
    training code, so it does not import ingest."""

    def list(self, location: S3Location) -> Iterable[ListedObject]: ...
    def get(self, listed: ListedObject) -> tuple[bytes, str | None]: ...


class LabelStore(Protocol):
    """The artifacts bucket: the ledger, and the feedback the labels become."""

    def get(self, key: str) -> bytes: ...
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def put_feedback(self, items: Sequence[FeedbackItem], received: datetime, *, caller: str | None = None) -> str: ...


def label_format(uri: str) -> str:
    """The file's format by its name's ending; DataError for any other."""
    for ending, fmt in _FORMATS.items():
        if uri.endswith(ending):
            return fmt
    raise DataError(f"{uri}: a label file ends in {', '.join(_FORMATS)} (its format)")


def read_labels(body: bytes, uri: str, live: Manifest | None = None) -> list[FeedbackItem]:
    """The file's labels, each naming its row by key and conformed to the `live` model's classes (or values);
    DataError naming the file, row and column otherwise."""
    # A CSV key is text as written (007 stays 007); the other formats carry their own types.
    table = read_object(body, label_format(uri), uri, [TableColumn(name=KEY_COLUMN, type="string")])
    missing = [name for name in (KEY_COLUMN, LABEL_COLUMN) if name not in table.column_names]
    if missing:
        raise DataError(
            f"{uri} has no {' or '.join(missing)} column (it has {', '.join(table.column_names)}): a label file "
            f"holds {KEY_COLUMN}, {LABEL_COLUMN} and optionally {TIME_COLUMN}"
        )
    keys = table.column(KEY_COLUMN).to_pylist()
    labels = table.column(LABEL_COLUMN).to_pylist()
    times = table.column(TIME_COLUMN).to_pylist() if TIME_COLUMN in table.column_names else [None] * len(keys)
    items = []
    for index, (key, label, time) in enumerate(zip(keys, labels, times, strict=True)):
        for column, value in ((KEY_COLUMN, key), (LABEL_COLUMN, label)):
            if value is None or value == "":
                raise DataError(f"{uri} row {index + 1}: no {column} (every row names its row's key and its label)")
        try:
            items.append(FeedbackItem(key=_text(key), label=_label(label), time=_time(time)))
        except (ValidationError, ValueError, TypeError) as exc:
            raise DataError(f"{uri} row {index + 1}: {_first_error(exc)} (key {key!r}, label {label!r})") from None
    if live is None:
        return items
    try:
        return conform_labels(items, task=live.task, classes=live.classes, loc="row")
    except InvalidRequest as exc:
        first = exc.errors[0]
        raise DataError(
            f"{uri} row {int(first.loc[1]) + 1}: {first.msg} ({len(exc.errors)} such row(s) in the file)"
        ) from None


def take_labels(
    listing: Listing, store: LabelStore, location: S3Location, live: Manifest | None = None
) -> LabelFilesReport:
    """Turn the new or changed label files under `location` into stored feedback; the ledger records each file.

    A file's labels count as received when the file landed (its upload time), whenever a cycle takes it. With the
    `live` model, a file holding a label it cannot have (a class it does not know) is refused whole.
    """
    try:
        ledger = LabelLedger.model_validate_json(store.get(layout.LABELS_LEDGER_KEY))
    except KeyError:
        ledger = LabelLedger()
    read = labels = 0
    refused = []
    for listed in listing.list(location):
        known = ledger.objects.get(listed.uri)
        if listed.hidden or (known is not None and known.etag == listed.etag):
            continue
        read += 1
        try:
            body, _ = listing.get(listed)
            items = read_labels(body, listed.uri, live)
            future = future_labels(items, listed.last_modified, loc="row")
            if future:
                raise DataError(f"{listed.uri} row {int(future[0].loc[1]) + 1}: {future[0].msg}")
        except DataError as exc:
            refused.append(str(exc))
            ledger.objects[listed.uri] = LabelObject(etag=listed.etag, refused=str(exc))
            continue
        for start in range(0, len(items), 10_000):
            store.put_feedback(items[start : start + 10_000], listed.last_modified, caller=LABEL_FILES)
        labels += len(items)
        ledger.objects[listed.uri] = LabelObject(etag=listed.etag, rows=len(items))
    if read:
        store.put(layout.LABELS_LEDGER_KEY, ledger.model_dump_json().encode(), "application/json")
    return LabelFilesReport(objects_read=read, labels=labels, refused=refused)


def _text(value: Any) -> str | None:
    """A key as text: integers as written (1001, not 1001.0)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return None if value is None else str(value)


def _label(value: Any) -> Any:
    """Whole-number labels as text ("1", as a classifier's class is named); other numbers as numbers."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return value


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a file's time without a zone is taken as UTC
    return value


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
