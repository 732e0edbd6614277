"""Capture, feedback and drift reports in the artifacts bucket (the layout of functions.core.layout)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from functions.adapters.s3_objects import get_bytes
from functions.core.capture import CapturedRow, CaptureRecord, capture_key
from functions.core.feedback import FeedbackItem, LabelJoin, StoredFeedback, feedback_key
from functions.core.labelled import LabelledRow
from functions.core.layout import CAPTURE_PREFIX, FEEDBACK_PREFIX, REPORTS_PREFIX

logger = logging.getLogger(__name__)

# Bytes read from S3 at a time when streaming lines. botocore's iter_lines reads 1 KiB at a
# time and rejoins a 20 KB capture line from twenty pieces (over a second per 200 MB object);
# splitting chunks of a MiB takes about a tenth of that.
READ_CHUNK_BYTES = 1 << 20
# Stored feedback leaves out what a label does not name (a keyed label has no request id).
_STORED: dict[str, Any] = {"mode": "json", "exclude_none": True}


def hours(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours that overlap [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


@dataclass
class ErasedKey:
    """What erasing one row key removed."""

    capture_objects: int = 0
    captured_rows: int = 0
    feedback_objects: int = 0
    labels: int = 0


class S3MonitoringStore:
    """Reads capture and feedback, writes feedback and reports; one object at a time, streamed."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    # -- capture ---------------------------------------------------------------------

    def capture_keys(self, start: datetime, end: datetime) -> list[str]:
        """Capture objects of the hours overlapping [start, end), in key order."""
        return [key for hour in hours(start, end) for key in self._keys(capture_key(hour, ""))]

    def capture_lines(self, key: str) -> Iterator[bytes]:
        """The lines of one capture object, streamed (never the whole object in memory)."""
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        pending = b""
        for chunk in body.iter_chunks(READ_CHUNK_BYTES):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()  # the start of a line the next chunk ends
            yield from (line for line in lines if line.strip())
        if pending.strip():
            yield pending

    def capture_records(self, start: datetime, end: datetime) -> Iterator[CaptureRecord]:
        """Validated capture records of [start, end); malformed lines are skipped (and logged per object)."""
        for key in self.capture_keys(start, end):
            malformed = 0
            for line in self.capture_lines(key):
                try:
                    record = CaptureRecord.model_validate_json(line)
                except ValidationError:
                    malformed += 1
                    continue
                if start <= record.time < end:
                    yield record
            if malformed:
                logger.warning("skipped %d malformed capture lines in %s", malformed, key)

    def capture_rows(
        self,
        start: datetime,
        end: datetime,
        request_ids: Collection[str] | None = None,
        keys: AbstractSet[str] = frozenset(),
    ) -> Iterator[CapturedRow]:
        """The rows of the capture records of [start, end), one by one; with `request_ids` (or `keys`), only the
        records of those requests (or holding one of those row keys)."""
        for record in self.capture_records(start, end):
            # Labels arrive for a few requests: expanding every other record's rows was most of a join's time.
            if (
                request_ids is None
                or record.request_id in request_ids
                or (record.keys is not None and not keys.isdisjoint(record.keys))
            ):
                yield from record.row_records()

    def put_capture(self, hour: datetime, name: str, lines: Sequence[bytes]) -> str:
        """Write capture lines as one object of `hour` (the local stand-in for Firehose)."""
        key = capture_key(hour, name)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=b"\n".join(lines) + b"\n")
        return key

    # -- feedback --------------------------------------------------------------------

    def put_feedback(self, items: Sequence[FeedbackItem], received: datetime, *, caller: str | None = None) -> str:
        """Store a batch of feedback, sent by `caller`, as one object; returns its key."""
        key = feedback_key(received, uuid.uuid4().hex)
        body = b"".join(
            orjson.dumps(StoredFeedback(received=received, caller=caller, **item.model_dump()).model_dump(**_STORED))
            + b"\n"
            for item in items
        )
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        return key

    def feedback(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[StoredFeedback]:
        """Stored feedback items received in [since, until) (unbounded ends when None)."""
        # Keys sort by the hour they arrived: one listing, starting at the first hour of interest.
        start_after = f"{FEEDBACK_PREFIX}{since.astimezone(UTC):%Y/%m/%d/%H}/" if since else None
        for key in self._keys(FEEDBACK_PREFIX, start_after=start_after):
            if until is not None and key >= f"{FEEDBACK_PREFIX}{until.astimezone(UTC):%Y/%m/%d/%H}/~":
                break
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
            for line in body.iter_lines():
                try:
                    item = StoredFeedback.model_validate_json(line)
                except ValidationError:
                    continue
                if (since is None or item.received >= since) and (until is None or item.received < until):
                    yield item.model_copy(update={"source": key})

    def erase_key(self, key: str) -> ErasedKey:
        """Erase every captured row and stored label of row key `key`, with the objects' older versions.

        Capture objects are rewritten without those rows (the rest keep their request ids and row numbers);
        feedback objects without those labels (deleted when nothing is left). The bucket is versioned: the
        versions that held them are deleted too, so nothing of them waits for the noncurrent-version expiry.
        """
        erased = ErasedKey()
        needle = orjson.dumps(key)
        for object_key in list(self._keys(CAPTURE_PREFIX)):
            body = self._get(object_key)
            if needle not in body:  # cheap: a line naming the key holds it as a JSON string
                continue
            lines, rows = [], 0
            for line in body.splitlines():
                try:
                    record = CaptureRecord.model_validate_json(line)
                except ValidationError:
                    lines.append(line)  # not a capture record: left as it was
                    continue
                kept = record.without_key(key)
                rows += record.rows - sum(part.rows for part in kept)
                lines += [part.model_dump_json(by_alias=True).encode() for part in kept]
            if rows:
                self._rewrite(object_key, lines)
                erased.capture_objects, erased.captured_rows = erased.capture_objects + 1, erased.captured_rows + rows
        for object_key in list(self._keys(FEEDBACK_PREFIX)):
            body = self._get(object_key)
            if needle not in body:
                continue
            lines = [line for line in body.splitlines() if line.strip()]
            kept_lines = [line for line in lines if orjson.loads(line).get("key") != key]
            if len(kept_lines) < len(lines):
                self._rewrite(object_key, kept_lines)
                erased.feedback_objects += 1
                erased.labels += len(lines) - len(kept_lines)
        return erased

    def _rewrite(self, key: str, lines: Sequence[bytes]) -> None:
        """Replace `key` with `lines` (delete it when there are none) and delete every older version of it."""
        listed = self._s3.list_object_versions(Bucket=self._bucket, Prefix=key).get("Versions", [])
        # An unversioned bucket lists its one version as "null": the write below replaces it.
        older = [v["VersionId"] for v in listed if v["Key"] == key and v["VersionId"] != "null"]
        if lines:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=b"\n".join(lines) + b"\n")
        else:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        for version_id in older:
            self._s3.delete_object(Bucket=self._bucket, Key=key, VersionId=version_id)

    def purge_feedback(self, caller: str) -> tuple[int, int]:
        """Delete every stored label `caller` sent (each feedback object holds one caller's batch or one label
        file); (objects, labels) deleted. The next monitor cycle and retrain run no longer see them."""
        objects = labels = 0
        for key in list(self._keys(FEEDBACK_PREFIX)):
            lines = [line for line in self._get(key).splitlines() if line.strip()]
            callers = {orjson.loads(line).get("caller") for line in lines}
            if callers == {caller}:
                self._s3.delete_object(Bucket=self._bucket, Key=key)
                objects, labels = objects + 1, labels + len(lines)
        return objects, labels

    # -- reports ---------------------------------------------------------------------

    def put_report(self, stem: str, json_body: bytes, html_body: str) -> tuple[str, str]:
        """Write a window's JSON and HTML reports, and point `latest` at them; (json key, html key)."""
        json_key, html_key = f"{REPORTS_PREFIX}{stem}.json", f"{REPORTS_PREFIX}{stem}.html"
        self._s3.put_object(Bucket=self._bucket, Key=json_key, Body=json_body, ContentType="application/json")
        self._s3.put_object(
            Bucket=self._bucket, Key=html_key, Body=html_body.encode(), ContentType="text/html; charset=utf-8"
        )
        latest = orjson.dumps({"json": json_key, "html": html_key})
        self._s3.put_object(Bucket=self._bucket, Key=f"{REPORTS_PREFIX}latest.json", Body=latest)
        return json_key, html_key

    def latest_report(self) -> tuple[bytes, str] | None:
        """(JSON, HTML) of the last report written, or None."""
        try:
            latest = orjson.loads(self._get(f"{REPORTS_PREFIX}latest.json"))
        except KeyError:
            return None
        return self._get(latest["json"]), self._get(latest["html"]).decode()

    # -- objects (the label files' ledger) --------------------------------------------

    def get(self, key: str) -> bytes:
        """An object's bytes; KeyError when it does not exist."""
        return self._get(key)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    # -- helpers ---------------------------------------------------------------------

    def _keys(self, prefix: str, *, start_after: str | None = None) -> Iterable[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        extra = {"StartAfter": start_after} if start_after else {}
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, **extra):
            for entry in page.get("Contents", ()):
                yield entry["Key"]

    def _get(self, key: str) -> bytes:
        return get_bytes(self._s3, self._bucket, key)


class S3LabelledRowSource:
    """Labelled rows for retraining: stored feedback joined with the captured row it labels."""

    def __init__(self, store: S3MonitoringStore, *, lookback: timedelta = timedelta(days=7)) -> None:
        self._store = store
        self._lookback = lookback

    def labelled_rows(self, since: datetime | None = None) -> list[LabelledRow]:
        """Rows whose label arrived since `since`, with the features they were served with."""
        labels = LabelJoin(self._store.feedback(since))
        if not labels:
            return []
        first = labels.earliest_received() - self._lookback
        end = labels.latest_received() + timedelta(hours=1)
        captured = self._store.capture_rows(first, end, labels.request_ids, labels.keys)
        rows = [
            LabelledRow(
                request_id=record.request_id,
                row=record.row,
                key=record.key,
                caller=item.caller,
                time=record.time,
                features=record.features,
                label=item.label,
                source=item.source,
            )
            for record, item in labels.joined(captured)
        ]
        logger.info("labelled rows: %s", labels.counts().model_dump())
        return sorted(rows, key=lambda r: (r.time, r.request_id, r.row))
