"""What the inference function counts, as CloudWatch metrics in Embedded Metric Format documents on stdout.

Every figure goes to the function's `Metrics` (flushed once per request by the entry's
decorator) with the single dimension `service`, so alarms keep one stable dimension set;
figures that need another dimension (a fallback's reason, a rollout's role) go out as
documents of their own.

The document is written for every request, so every byte of it is paid for a million times
over in CloudWatch Logs ingestion (`python -m benchmarks --only cost`): it carries the metrics
alone, with no metadata (the answer and the capture line name the model version). The counts
that alarms divide go out with every request; ScoringLatency, which only the dashboard graphs,
is batched: a container publishes its requests' latencies (to the microsecond) ten at a time as
one array, or sooner once the oldest has waited a minute, with the request that fills the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from functions.core import telemetry
from functions.inference.service import Outcome

LATENCY_DECIMALS = 3  # milliseconds to the microsecond: "0.339", where the float's repr is "0.33910199999809265"


class LatencyBatch:
    """Latencies held until `size` of them, or the oldest `max_age_s` old, go out in one document."""

    def __init__(self, size: int = 10, max_age_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.max_age_s, self._clock = size, max_age_s, clock
        self._values: list[float] = []
        self._first_at = 0.0

    def add(self, value: float) -> list[float]:
        """Hold `value`; the latencies to publish now (all of those held), or none."""
        now = self._clock()
        if not self._values:
            self._first_at = now
        self._values.append(value)
        if len(self._values) < self.size and now - self._first_at < self.max_age_s:
            return []
        ready, self._values = self._values, []
        return ready


_scoring_latencies = LatencyBatch()  # one per container


def count_predict_request(metrics: Metrics) -> None:
    """One /predict call reached the function, valid or not."""
    metrics.add_metric(name=telemetry.PREDICT_REQUESTS, unit=MetricUnit.Count, value=1)


def count_invalid_request(metrics: Metrics) -> None:
    """One /predict call was refused as bad input (so that InvalidRequests / PredictRequests is a rate)."""
    metrics.add_metric(name=telemetry.INVALID_REQUESTS, unit=MetricUnit.Count, value=1)


def record_answer(metrics: Metrics, logger: Logger, outcome: Outcome, started: float, *, rollout: bool) -> float:
    """Count a /predict answer; the scoring latency in milliseconds since `started` (time.perf_counter)."""
    rows = len(outcome.predictions)
    metrics.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    # The rows' counts are published when not zero, as InvalidRequests always was: to every alarm on
    # them a missing datapoint is a zero (rates over Predictions, missing data not breaching), and
    # Powertools' add_metric is a measurable share of a one-row request (`make bench`).
    counts = (
        (telemetry.IMPUTATIONS, outcome.imputations),
        (telemetry.OUT_OF_RANGE, outcome.out_of_range),
        (telemetry.OUTLIERS, outcome.outliers),
        (telemetry.FALLBACKS, rows if outcome.fallback_reason else 0),
        (telemetry.LAST_GOOD_ANSWERS, rows if outcome.stale else 0),
    )
    for name, count in counts:
        if count:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if outcome.fallback_reason:
        # A separate EMF document, so the reason dimension does not split the alarms' metrics.
        with single_metric(
            name=telemetry.FALLBACKS_BY_REASON, unit=MetricUnit.Count, value=rows, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name=telemetry.SERVICE_DIMENSION, value=metrics.service or "")
            metric.add_dimension(name=telemetry.REASON_DIMENSION, value=outcome.fallback_reason)
    elapsed_ms = round((time.perf_counter() - started) * 1000, LATENCY_DECIMALS)
    for latency in _scoring_latencies.add(elapsed_ms):  # Powertools writes a metric's values as one array
        metrics.add_metric(name=telemetry.SCORING_LATENCY, unit=MetricUnit.Milliseconds, value=latency)
    if rollout:
        _record_rollout(metrics, logger, outcome, rows, elapsed_ms)
    return elapsed_ms


def _record_rollout(metrics: Metrics, logger: Logger, outcome: Outcome, rows: int, elapsed_ms: float) -> None:
    """During a rollout, the answer's figures by role (live or candidate: two values, whatever the versions)."""
    # Its own EMF document (EphemeralMetrics shares nothing with `metrics`), so the alarms' set keeps one dimension.
    by_role = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    by_role.add_dimension(name=telemetry.MODEL_ROLE_DIMENSION, value=outcome.role)
    by_role.add_metric(name=telemetry.PREDICTIONS, unit=MetricUnit.Count, value=rows)
    by_role.add_metric(name=telemetry.FALLBACKS, unit=MetricUnit.Count, value=rows if outcome.fallback_reason else 0)
    by_role.add_metric(name=telemetry.SCORING_LATENCY, unit=MetricUnit.Milliseconds, value=elapsed_ms)
    by_role.add_metric(name=telemetry.CANDIDATE_ERRORS, unit=MetricUnit.Count, value=int(bool(outcome.candidate_error)))
    shadow = outcome.shadow
    if shadow is not None:
        by_role.add_metric(name=telemetry.SHADOW_LATENCY, unit=MetricUnit.Milliseconds, value=shadow.latency_ms)
        by_role.add_metric(name=telemetry.SHADOW_ERRORS, unit=MetricUnit.Count, value=int(shadow.error is not None))
    by_role.add_metadata(key="model_version", value=outcome.version or "none")
    by_role.flush_metrics()
    if outcome.candidate_error or (shadow is not None and shadow.error):
        logger.warning(
            "the rollout's candidate could not score a request; the live model answered",
            extra={"error": outcome.candidate_error or (shadow.error if shadow else None)},
        )
