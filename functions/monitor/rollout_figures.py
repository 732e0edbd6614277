"""A rollout's figures from what the endpoint captured: both versions, the shadow comparison, quality, drift. AWS-free.

During a rollout every request is captured (functions.inference.capture), with the
answering version's role and latency, a shadowed request with the candidate's answers
beside live's. This reads one window of those records (and the feedback that arrived
for them) into `RolloutFigures`, which the rollout's judge (functions.core.rollout)
decides on and the monitor's report shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from functions.core.capture import CaptureRecord
from functions.core.drift import DriftPolicy, drift_report
from functions.core.feedback import LabelJoin, StoredFeedback
from functions.core.manifest import Manifest
from functions.core.quality import HIGHER_IS_BETTER, live_metric
from functions.core.rollout import RolloutFigures, ShadowFigures, VersionFigures
from functions.monitor.counting import WindowCounter


class RolloutSource(Protocol):
    def capture_records(self, start: datetime, end: datetime) -> Iterable[CaptureRecord]: ...
    def feedback(self, since: datetime | None = None, until: datetime | None = None) -> Iterable[StoredFeedback]: ...


@dataclass
class _Answers:
    """One version's answered rows (for quality) and request latencies."""

    requests: int = 0
    rows: int = 0
    fallback_rows: int = 0
    candidate_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    labelled: list[tuple[Any, Any, Any, Any]] = field(default_factory=list)  # (truth, label, probabilities, value)


@dataclass
class _Shadow:
    requests: int = 0
    rows: int = 0
    errors: int = 0
    agreements: int = 0
    differences: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    live_latencies: list[float] = field(default_factory=list)
    labelled: list[tuple[Any, Any, Any, Any, Any, Any, Any]] = field(default_factory=list)


def rollout_figures(
    source: RolloutSource,
    *,
    live: Manifest,
    candidate: Manifest,
    start: datetime,
    end: datetime,
    drift_policy: DriftPolicy,
) -> RolloutFigures:
    """The figures of [start, end) for `live` and `candidate` (records of other versions are left out)."""
    labels = LabelJoin(source.feedback(start, None))
    answers = {live.version: _Answers(), candidate.version: _Answers()}
    shadow = _Shadow()
    counter = WindowCounter(lambda version: candidate if version == candidate.version else None)
    for record in source.capture_records(start, end):
        answered = answers.get(str(record.model_version))
        if answered is None:
            continue
        keys = record.keys or [None] * record.rows
        truths = [
            labels.match(record.request_id, record.first_row + i, keys[i], record.time, record.caller)
            for i in range(record.rows)
        ]
        _add_answers(answered, record, truths)
        if record.shadow is not None and record.shadow.version == candidate.version:
            _add_shadow(shadow, record, truths, classification=live.task == "classification")
            if record.shadow.error is None:
                counter.add_record(_as_candidate(record))
    candidate_counts = counter.result().get(candidate.version)
    drift = drift_report(candidate, candidate_counts, drift_policy) if candidate_counts else None
    return RolloutFigures(
        start=start,
        end=end,
        metric=live.metric,
        higher_is_better=HIGHER_IS_BETTER.get(live.metric, True),
        live=_version_figures(live, answers[live.version]),
        candidate=_version_figures(candidate, answers[candidate.version]),
        shadow=_shadow_figures(live, candidate, shadow) if shadow.requests else None,
        candidate_drift_share=drift.drift_share if drift else None,
        candidate_drifted_features=drift.drifted_features if drift else [],
    )


def _add_answers(answered: _Answers, record: CaptureRecord, truths: Sequence[StoredFeedback | None]) -> None:
    answered.requests += 1 if record.first_row == 0 else 0
    answered.rows += record.rows
    answered.fallback_rows += sum(reason is not None for reason in record.fallback)
    answered.candidate_errors += 1 if record.candidate_error and record.first_row == 0 else 0
    if record.latency_ms is not None and record.first_row == 0:
        answered.latencies.append(record.latency_ms)
    for i, truth in enumerate(truths):
        if truth is not None and record.fallback[i] is None:
            answered.labelled.append((truth.label, *_row_answer(record, i)))


def _add_shadow(
    shadow: _Shadow, record: CaptureRecord, truths: Sequence[StoredFeedback | None], *, classification: bool
) -> None:
    columns = record.shadow
    assert columns is not None
    if record.first_row == 0:
        shadow.requests += 1
        shadow.latencies.append(columns.latency_ms)
        if record.latency_ms is not None:
            shadow.live_latencies.append(record.latency_ms)
    if columns.error is not None:
        shadow.errors += 1 if record.first_row == 0 else 0
        return
    for i in range(record.rows):
        if record.fallback[i] is not None:
            continue  # plan B answered live's row: nothing to compare
        shadow.rows += 1
        live_answer, candidate_answer = _row_answer(record, i), _row_answer(columns, i)
        if classification:
            shadow.agreements += int(live_answer[0] == candidate_answer[0])
            live_p, candidate_p = live_answer[1] or {}, candidate_answer[1] or {}
            shadow.differences.append(max(abs(live_p[c] - candidate_p.get(c, 0.0)) for c in live_p) if live_p else 0.0)
        elif live_answer[2] is not None and candidate_answer[2] is not None:
            shadow.differences.append(abs(candidate_answer[2] - live_answer[2]) / max(abs(live_answer[2]), 1.0))
        truth = truths[i]
        if truth is not None:
            shadow.labelled.append((truth.label, *live_answer, *candidate_answer))


def _row_answer(columns: Any, i: int) -> tuple[Any, Any, Any]:
    """(label, probabilities, value) of row i of a record's (or its shadow's) answer columns."""
    label = columns.label[i] if columns.label is not None else None
    probabilities = {c: p[i] for c, p in columns.probabilities.items()} if columns.probabilities else None
    value = columns.value[i] if columns.value is not None else None
    return label, probabilities, value


def _as_candidate(record: CaptureRecord) -> CaptureRecord:
    """The shadowed rows as the candidate answered them, to count against the candidate's own baseline."""
    columns = record.shadow
    assert columns is not None
    return record.model_copy(
        update={
            "model_version": columns.version,
            "label": columns.label,
            "probabilities": columns.probabilities,
            "value": columns.value,
            "shadow": None,
        }
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _metric(manifest: Manifest, rows: Sequence[tuple[Any, Any, Any, Any]]) -> float | None:
    if not rows:
        return None
    truth, labels, probabilities, values = (list(column) for column in zip(*rows, strict=True))
    return live_metric(
        manifest.metric,
        truth,
        labels=labels,
        probabilities=probabilities,
        values=values,
        classes=manifest.classes or (),
    )


def _version_figures(manifest: Manifest, answered: _Answers) -> VersionFigures:
    return VersionFigures(
        version=manifest.version,
        requests=answered.requests,
        rows=answered.rows,
        fallback_rows=answered.fallback_rows,
        candidate_errors=answered.candidate_errors,
        latency_p50_ms=_percentile(answered.latencies, 50),
        latency_p99_ms=_percentile(answered.latencies, 99),
        quality=_metric(manifest, answered.labelled),
        labelled_rows=len(answered.labelled),
    )


def _shadow_figures(live: Manifest, candidate: Manifest, shadow: _Shadow) -> ShadowFigures:
    classification = live.task == "classification"
    live_rows = [(truth, label, p, v) for truth, label, p, v, *_ in shadow.labelled]
    candidate_rows = [(truth, label, p, v) for truth, _l, _p, _v, label, p, v in shadow.labelled]
    return ShadowFigures(
        candidate=candidate.version,
        requests=shadow.requests,
        rows=shadow.rows,
        errors=shadow.errors,
        label_agreement=shadow.agreements / shadow.rows if classification and shadow.rows else None,
        mean_abs_difference=float(np.mean(shadow.differences)) if shadow.differences else None,
        p99_abs_difference=_percentile(shadow.differences, 99),
        latency_p50_ms=_percentile(shadow.latencies, 50),
        latency_p99_ms=_percentile(shadow.latencies, 99),
        live_latency_p50_ms=_percentile(shadow.live_latencies, 50),
        live_latency_p99_ms=_percentile(shadow.live_latencies, 99),
        quality=_metric(candidate, candidate_rows),
        live_quality=_metric(live, live_rows),
        labelled_rows=len(shadow.labelled),
    )
