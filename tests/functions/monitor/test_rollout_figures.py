"""A rollout's figures from capture records written by the serving code, and the judge's verdict on them."""

from __future__ import annotations

import io
from collections.abc import Iterable
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from functions.core.capture import CAPTURE_MARKER, CaptureRecord
from functions.core.drift import DriftPolicy
from functions.core.feedback import StoredFeedback
from functions.core.predictor import Predictor
from functions.core.rollout import Rollout, RolloutFigures, RolloutPolicy, VersionFigures, judge
from functions.inference import service
from functions.inference.capture import Capture
from functions.inference.live_model import Candidate, Serving
from functions.monitor.rollout_figures import rollout_figures
from functions.training.train import Bundle, load_recipe, load_table

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


class _Source:
    def __init__(self, records: list[CaptureRecord], feedback: list[StoredFeedback]) -> None:
        self.records, self.items = records, feedback

    def capture_records(self, start: datetime, end: datetime) -> Iterable[CaptureRecord]:
        return [r for r in self.records if start <= r.time < end]

    def feedback(self, since: datetime | None = None, until: datetime | None = None) -> Iterable[StoredFeedback]:
        return self.items


def _serve(live: Bundle, candidate: Bundle, mode: str, percent: float, requests: int = 60) -> _Source:
    """`requests` five-row requests through the serving code, captured as the endpoint captures them."""
    columns, target = load_table(load_recipe())
    names = list(columns)
    live_predictor = Predictor(live.manifest, live.onnx_bytes)
    rollout = Rollout(candidate=candidate.version, mode=mode, percent=percent, started_at=T0)  # type: ignore[arg-type]
    serving = Serving(
        live_predictor, live.version, live.manifest.fallback, None,
        candidate=Candidate(Predictor(candidate.manifest, candidate.onnx_bytes), rollout),
    )  # fmt: skip
    capture = Capture(sampling_rate=0.0, clock=lambda: T0 + timedelta(minutes=5))
    out, feedback = io.StringIO(), []
    draws = iter(np.random.default_rng(1).random(requests))
    for r in range(requests):
        rows = [{n: float(columns[n][5 * r + i]) for n in names} for i in range(5)]
        outcome = service.predict(serving, rows, draw=lambda: float(next(draws)))
        assert outcome.predictor is not None
        with redirect_stdout(out):
            capture.record(
                request_id=f"r{r}", manifest=outcome.predictor.manifest, model_version=outcome.version, rows=rows,
                batch=outcome.batch, predictions=outcome.predictions, role=outcome.role, latency_ms=0.5,
                shadow=outcome.shadow, candidate_error=outcome.candidate_error, always=True,
            )  # fmt: skip
        feedback += [
            StoredFeedback(request_id=f"r{r}", row=i, label=str(target[5 * r + i]), received=T0 + timedelta(minutes=9))
            for i in range(5)
        ]
    lines = [line for line in out.getvalue().splitlines() if CAPTURE_MARKER in line]
    records = [CaptureRecord.model_validate_json(line) for line in lines]
    return _Source(records, feedback)


def _figures(source: _Source, live: Bundle, candidate: Bundle) -> Any:
    return rollout_figures(
        source, live=live.manifest, candidate=candidate.manifest, start=T0, end=T0 + timedelta(hours=1),
        drift_policy=DriftPolicy(min_rows=50),
    )  # fmt: skip


def test_a_shadow_compares_the_candidate_with_live_row_by_row(bundle: Bundle, good: Bundle) -> None:
    figures = _figures(_serve(bundle, good, "shadow", 100), bundle, good)
    shadow = figures.shadow
    assert shadow is not None and (shadow.requests, shadow.rows, shadow.errors) == (60, 300, 0)
    assert figures.live.rows == 300 and figures.candidate.rows == 0, "live answered every row"
    assert shadow.label_agreement is not None and shadow.label_agreement > 0.9
    assert shadow.mean_abs_difference is not None and shadow.p99_abs_difference is not None
    assert 0 < shadow.mean_abs_difference <= shadow.p99_abs_difference <= 1
    assert shadow.latency_p99_ms is not None and shadow.live_latency_p99_ms == 0.5
    assert shadow.labelled_rows == 300 and shadow.quality is not None and shadow.live_quality is not None
    assert figures.candidate_drift_share is not None, "the candidate's drift against its own baseline"
    verdict = judge("shadow", figures, RolloutPolicy(max_latency_ratio=1000), alarms=[])
    assert verdict.decision == "promote", verdict.reasons


def test_a_candidate_trained_on_shuffled_labels_is_refused_in_shadow(bundle: Bundle, bad: Bundle) -> None:
    figures = _figures(_serve(bundle, bad, "shadow", 100), bundle, bad)
    assert figures.shadow is not None and figures.shadow.label_agreement is not None
    assert figures.shadow.label_agreement < 0.8
    verdict = judge("shadow", figures, RolloutPolicy(max_latency_ratio=1000), alarms=[])
    assert verdict.decision == "refuse"
    assert any("labels differ" in reason for reason in verdict.reasons), verdict.reasons
    assert any("from feedback" in reason for reason in verdict.reasons), "its quality on the same labels is worse"


def test_a_canary_splits_the_figures_by_version(bundle: Bundle, good: Bundle) -> None:
    figures = _figures(_serve(bundle, good, "canary", 50), bundle, good)
    assert figures.shadow is None
    assert figures.live.requests + figures.candidate.requests == 60
    assert 15 < figures.candidate.requests < 45
    assert figures.candidate.labelled_rows == figures.candidate.rows and figures.candidate.quality is not None
    policy = RolloutPolicy(min_rows=10, min_labelled_rows=10, max_latency_ratio=1000, quality_tolerance=0.2)
    assert judge("canary", figures, policy, alarms=[]).decision == "promote"
    refused = judge("canary", figures, policy, alarms=["slipway-dev-5xx"])
    assert refused.decision == "refuse" and refused.reasons == ["serving alarms in ALARM when judged: slipway-dev-5xx"]


def test_too_few_rows_is_a_refusal_that_says_so(bundle: Bundle, good: Bundle) -> None:
    figures = _figures(_serve(bundle, good, "shadow", 100, requests=4), bundle, good)
    verdict = judge("shadow", figures, RolloutPolicy(), alarms=[])
    assert verdict.decision == "refuse" and verdict.reasons[0] == "20 rows compared, fewer than 200"


def test_a_slower_canary_is_refused_beyond_the_ratio_and_the_slack() -> None:
    def figures(p50: float, p99: float, requests: int = 3000) -> RolloutFigures:
        live = VersionFigures(version="a", requests=9000, rows=9000, latency_p50_ms=2.0, latency_p99_ms=4.0)
        candidate = VersionFigures(version="b", requests=requests, rows=requests, latency_p50_ms=p50,
                                   latency_p99_ms=p99)  # fmt: skip
        return RolloutFigures(start=T0, end=T0, metric="roc_auc", higher_is_better=True, live=live, candidate=candidate)

    policy = RolloutPolicy(min_rows=100)  # within 1.5x live's + 1 ms
    assert judge("canary", figures(3.9, 6.9), policy, alarms=[]).decision == "promote"
    slow = judge("canary", figures(4.1, 7.1), policy, alarms=[])
    assert slow.decision == "refuse" and slow.reasons == [
        "p50 latency 4.10 ms is 2.05x live's 2.00 ms, over 1.5x and 1 ms",
        "p99 latency 7.10 ms is 1.77x live's 4.00 ms, over 1.5x and 1 ms",
    ]
    few = judge("canary", figures(2.0, 30.0, requests=400), policy, alarms=[])
    assert few.decision == "promote" and "p99 latency" not in few.checks, "a p99 of 400 requests is not judged"
