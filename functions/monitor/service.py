"""One monitor cycle: count the window, judge drift, measure live quality and bias across segments, report. AWS-free.

The handler (or the CLI, or the local stack) passes the stores and a publisher;
everything decided here is plain code over counts and labelled rows.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import orjson
from pydantic import BaseModel, Field

from functions.core.data_source import parse_s3_uri
from functions.core.drift import DriftPolicy, DriftReport, drift_report, empty_counts
from functions.core.estimated_quality import (
    EstimatedQuality,
    QualityPoint,
    answered_rows,
    below,
    compare,
    estimate_quality,
    with_point,
)
from functions.core.events import DriftDetectedDetail, EstimatedQualityDrop
from functions.core.feedback import LabelCounts, LabelFilesReport, LabelJoin
from functions.core.layout import QUALITY_HISTORY_KEY
from functions.core.manifest import Manifest
from functions.core.quality import HIGHER_IS_BETTER, live_metric
from functions.core.registry import ModelStore, Registry
from functions.core.rollout import Rollout, RolloutFigures
from functions.core.segments import LabelledAnswer, SegmentReport, segment_report
from functions.monitor.config import MonitorPolicy
from functions.monitor.counting import WindowCounter
from functions.monitor.report_html import render_html
from functions.monitor.rollout_figures import rollout_figures


class MonitoringStore(Protocol):
    def capture_records(self, start: datetime, end: datetime) -> Any: ...
    def capture_keys(self, start: datetime, end: datetime) -> list[str]: ...
    def capture_lines(self, key: str) -> Any: ...
    def capture_rows(
        self, start: datetime, end: datetime, request_ids: Collection[str] | None = None, keys: AbstractSet[str] = ...
    ) -> Any: ...
    def feedback(self, since: datetime | None = None, until: datetime | None = None) -> Any: ...
    def put_report(self, stem: str, json_body: bytes, html_body: str) -> tuple[str, str]: ...
    def get(self, key: str) -> bytes: ...
    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class Quality(BaseModel):
    """The recipe's metric on labelled live rows of one model version."""

    model_version: str
    metric: str
    value: float | None
    holdout: float | None
    higher_is_better: bool
    labelled_rows: int


class CycleFindings(BaseModel):
    """What one cycle found: its JSON report, as written to reports/."""

    report: DriftReport
    quality: list[Quality]
    labels: LabelCounts = Field(description="The labels of the quality window: matched, repeated, unknown, late.")
    label_files: LabelFilesReport | None = Field(None, description="None when the stage declares no data.labels.")
    rollout: RolloutFigures | None = None
    segments: SegmentReport | None = Field(None, description="None when the live model declares no segments.")
    estimated: EstimatedQuality | None = Field(
        None,
        serialization_alias="estimated_quality",
        description="The live model's quality estimated from the window's probabilities, without labels.",
    )


class CycleResult(CycleFindings):
    """What one cycle found and wrote."""

    window_start: datetime
    window_end: datetime
    report_key: str
    html_key: str
    event: DriftDetectedDetail | None
    skipped_lines: int


@dataclass
class Manifests:
    """Manifests by version, read once per cycle."""

    store: ModelStore
    cache: dict[str, Manifest | None] = field(default_factory=dict)

    def __call__(self, version: str) -> Manifest | None:
        if version not in self.cache:
            try:
                self.cache[version] = self.store.get_manifest(version)
            except Exception:  # an unknown or unreadable version: its rows are skipped, counted
                self.cache[version] = None
        return self.cache[version]


class Window(NamedTuple):
    """The hours [start, end) a cycle judges."""

    start: datetime
    end: datetime


def window_of(now: datetime, hours: int) -> Window:
    """The last `hours` whole hours before `now` (UTC)."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return Window(end - timedelta(hours=hours), end)


def run_cycle(
    *,
    store: MonitoringStore,
    registry: Registry,
    policy: MonitorPolicy,
    window: Window,
    label_files: LabelFiles | None = None,
) -> CycleResult:
    """Take the new label files (when the stage declares them), then judge `window` against the live model's
    baseline (both from `registry`) and write its reports.

    Prediction rates per segment are over the window; error rates and the live metric over the
    labelled rows of the quality window (`policy.quality_window_hours`), as the live quality. The estimated quality
    is over the window's answered rows; below `policy.estimated_quality_alarm_below` (with the drift policy's minimum
    rows) it is a reason to retrain, put on the DriftDetected event like drift itself.
    """
    estimated_quality_below = policy.estimated_quality_alarm_below
    start, end = window
    current = registry.live()  # once: the live version and its rollout from the same pointer
    live_version = current.version
    manifests = Manifests(registry.store)
    live = manifests(live_version) if live_version else None
    taken = take_label_files(store, label_files, live) if label_files else None
    if live_version is None:
        raise LookupError("no live model: nothing to monitor against (train and promote one first)")
    if live is None:
        raise LookupError(f"the live model {live_version} has no readable manifest")
    counter = WindowCounter(manifests)
    for key in store.capture_keys(start, end):
        counter.add_lines(store.capture_lines(key), start, end)
    counts = counter.result().get(live_version) or empty_counts(live)
    counts = counts.model_copy(update={"start": start, "end": end})
    report = drift_report(live, counts, policy.drift)
    labelled, label_counts = labelled_answers(store, end - timedelta(hours=policy.quality_window_hours), end)
    quality = measure_quality(labelled, manifests)
    realized = next((q.value for q in quality if q.model_version == live_version), None)
    estimated = estimated_live_quality(live, counter, labelled.get(live_version, []), realized)
    history = record_history(store, estimated, realized, end)
    segments = None
    if live.segments:
        live_labelled = labelled.get(live_version, [])
        segments = segment_report(live, counter.segment_counts(live_version), live_labelled, policy.segments)
    rollout = _rollout(store, manifests, current.rollout, live, policy.drift, start, end)
    findings = CycleFindings(
        report=report,
        quality=quality,
        labels=label_counts,
        label_files=taken,
        rollout=rollout,
        segments=segments,
        estimated=estimated,
    )
    body = orjson.dumps(findings.model_dump(mode="json", by_alias=True), option=orjson.OPT_INDENT_2)
    html = render_html(report, quality, rollout, segments, label_counts, estimated=estimated, history=history)
    json_key, html_key = store.put_report(f"{end:%Y/%m/%d/%H}-{live_version}", body, html)
    event = None
    dropped = below(estimated, estimated_quality_below, min_rows=policy.drift.min_rows)
    if report.drift_detected or dropped:
        event = DriftDetectedDetail(
            model_version=live_version,
            window_start=start,
            window_end=end,
            rows=report.rows,
            drift_share=report.drift_share,
            drifted_features=[
                *report.drifted_features,
                *(["prediction"] if report.prediction.drift else []),
                *(["outliers"] if report.outliers and report.outliers.drift else []),
                *(["estimated_quality"] if dropped else []),
            ],
            report_key=json_key,
            estimated_quality=(
                EstimatedQualityDrop(metric=estimated.metric, value=estimated.value, threshold=estimated_quality_below)
                if dropped and estimated.value is not None and estimated_quality_below is not None
                else None
            ),
        )
    return CycleResult(
        **dict(findings),
        window_start=start,
        window_end=end,
        report_key=json_key,
        html_key=html_key,
        event=event,
        skipped_lines=counter.skipped,
    )


def estimated_live_quality(
    live: Manifest, counter: WindowCounter, labelled: list[LabelledAnswer], realized: float | None
) -> EstimatedQuality:
    """The live model's quality estimated over the window's answered rows; with labels, beside the realized figure
    of the quality window (and the estimate over the same labelled rows), to show what the estimate cannot see."""
    classes = live.classes or ()
    found = estimate_quality(live, *counter.answers(live.version, len(classes)))
    if not labelled or not found.metrics or realized is None:
        return found
    columns = {c: [(row.probabilities or {}).get(c) for row in labelled] for c in classes}
    raw, predicted = answered_rows(columns, [row.label for row in labelled], classes, len(labelled))
    return compare(found, live, raw, predicted, realized)


def record_history(
    store: MonitoringStore, estimated: EstimatedQuality, realized: float | None, end: datetime
) -> list[QualityPoint]:
    """The stored series of estimated and realized quality, with this cycle's point added (and written back)."""
    try:
        stored = orjson.loads(store.get(QUALITY_HISTORY_KEY))
    except KeyError:
        stored = []
    history = with_point([QualityPoint.model_validate(p) for p in stored], estimated, realized, end)
    store.put(QUALITY_HISTORY_KEY, orjson.dumps([p.model_dump(mode="json") for p in history]), "application/json")
    return history


def _rollout(
    store: MonitoringStore,
    manifests: Manifests,
    rollout: Rollout | None,
    live: Manifest,
    policy: DriftPolicy,
    start: datetime,
    end: datetime,
) -> RolloutFigures | None:
    """The candidate beside live over the part of the window its rollout covers (None without one)."""
    candidate = manifests(rollout.candidate) if rollout else None
    if rollout is None or candidate is None or rollout.started_at >= end:
        return None
    return rollout_figures(
        store, live=live, candidate=candidate, start=max(start, rollout.started_at), end=end, drift_policy=policy
    )


@dataclass(frozen=True)
class LabelFiles:
    """Where the stage's label files land (data.labels) and the lake reader that lists and reads them."""

    listing: Any
    uri: str


def take_label_files(store: Any, files: LabelFiles, live: Manifest | None) -> LabelFilesReport:
    """Turn the new or changed label files into stored feedback, before a cycle joins it; their labels are
    checked against the live model's classes (not checked while no model is live)."""
    from functions.lake.labels import take_labels  # pyarrow, imported only by a stage that declares label files

    return take_labels(files.listing, store, parse_s3_uri(files.uri), live)


def labelled_answers(
    store: MonitoringStore, start: datetime, end: datetime
) -> tuple[dict[str, list[LabelledAnswer]], LabelCounts]:
    """Per model version, the model's answers (not plan B's) to rows whose label arrived in [start, end); and
    what became of those labels. A label looks back as far as the window is long for its prediction."""
    labels = LabelJoin(store.feedback(start, end))
    out: dict[str, list[LabelledAnswer]] = {}
    if not labels:
        return out, labels.counts()
    earliest = labels.earliest_received() - (end - start)
    for record, item in labels.joined(store.capture_rows(earliest, end, labels.request_ids, labels.keys)):
        if record.model_version and record.fallback is None:
            out.setdefault(record.model_version, []).append(
                LabelledAnswer(
                    features=record.features,
                    label=record.label,
                    probabilities=record.probabilities,
                    value=record.value,
                    truth=item.label,
                )
            )
    return out, labels.counts()


def measure_quality(labelled: dict[str, list[LabelledAnswer]], manifests: Manifests) -> list[Quality]:
    """The recipe's metric per model version over its labelled answers."""
    out = []
    for version, rows in sorted(labelled.items()):
        manifest = manifests(version)
        if manifest is None:
            continue
        value = live_metric(
            manifest.metric,
            [row.truth for row in rows],
            labels=[row.label for row in rows],
            probabilities=[row.probabilities for row in rows],
            values=[row.value for row in rows],
            classes=manifest.classes or (),
        )
        out.append(
            Quality(
                model_version=version,
                metric=manifest.metric,
                value=value,
                holdout=manifest.metrics.get(manifest.metric),
                higher_is_better=HIGHER_IS_BETTER.get(manifest.metric, True),
                labelled_rows=len(rows),
            )
        )
    return out
