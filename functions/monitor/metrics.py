"""A cycle's findings as CloudWatch metrics, in Embedded Metric Format documents on stdout."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from functions.core import telemetry
from functions.core.segments import SegmentReport
from functions.monitor.service import CycleResult

_FEATURE_METRICS = (
    (telemetry.FEATURE_PSI, "psi"),
    (telemetry.FEATURE_JS, "js"),
    (telemetry.FEATURE_KS, "ks"),
    (telemetry.FEATURE_LINF, "linf"),
    (telemetry.FEATURE_MISSING_RATE, "missing_rate"),
    (telemetry.FEATURE_OUT_OF_RANGE, "out_of_range"),
)
# (metric, field, the sufficiency it needs): a rate of too few rows is not published.
_SEGMENT_METRICS = (
    (telemetry.SEGMENT_POSITIVE_RATE, "positive_rate", "sufficient"),
    (telemetry.SEGMENT_MEAN_PREDICTION, "mean_prediction", "sufficient"),
    (telemetry.SEGMENT_TRUE_POSITIVE_RATE, "true_positive_rate", "labelled_sufficient"),
    (telemetry.SEGMENT_FALSE_POSITIVE_RATE, "false_positive_rate", "labelled_sufficient"),
    (telemetry.SEGMENT_MAE, "mae", "labelled_sufficient"),
)
_GAP_METRICS = {
    "demographic_parity": telemetry.DEMOGRAPHIC_PARITY_GAP,
    "true_positive_rate": telemetry.TRUE_POSITIVE_RATE_GAP,
    "false_positive_rate": telemetry.FALSE_POSITIVE_RATE_GAP,
    "mean_prediction": telemetry.MEAN_PREDICTION_GAP,
    "mae": telemetry.MAE_GAP,
}


def publish(result: CycleResult, *, namespace: str, service: str) -> None:
    """Overall figures (dimension service), per feature (service, feature), quality (service, and per version)."""
    report = result.report
    overall = EphemeralMetrics(namespace=namespace, service=service)
    overall.add_metadata(key="model_version", value=report.model_version)
    overall.add_metric(name=telemetry.MONITORED_ROWS, unit=MetricUnit.Count, value=report.rows)
    overall.add_metric(name=telemetry.DRIFT_SHARE, unit=MetricUnit.NoUnit, value=report.drift_share)
    overall.add_metric(name=telemetry.DRIFT_DETECTED, unit=MetricUnit.Count, value=int(report.drift_detected))
    insufficient = int(report.verdict == "insufficient_data")
    overall.add_metric(name=telemetry.DRIFT_INSUFFICIENT_DATA, unit=MetricUnit.Count, value=insufficient)
    if report.outliers is not None and report.outliers.share is not None:
        overall.add_metric(name=telemetry.OUTLIER_SHARE, unit=MetricUnit.NoUnit, value=report.outliers.share)
    if report.prediction.psi is not None:
        overall.add_metric(name=telemetry.PREDICTION_PSI, unit=MetricUnit.NoUnit, value=report.prediction.psi)
    live_quality = next((q for q in result.quality if q.model_version == report.model_version), None)
    if live_quality is not None and live_quality.value is not None:
        # Without a version dimension, so the quality alarm survives promotions.
        overall.add_metric(name=telemetry.MODEL_QUALITY, unit=MetricUnit.NoUnit, value=live_quality.value)
    estimated = result.estimated
    if estimated is not None and estimated.value is not None:
        # The gate metric's estimate, without a version dimension, as ModelQuality: what the alarm watches.
        overall.add_metric(name=telemetry.ESTIMATED_QUALITY, unit=MetricUnit.NoUnit, value=estimated.value)
    if result.segments is not None and result.segments.largest_gap is not None:
        # Without segment dimensions, so one alarm watches every segment feature.
        overall.add_metric(name=telemetry.SEGMENT_GAP, unit=MetricUnit.NoUnit, value=result.segments.largest_gap)
    overall.flush_metrics()
    if result.segments is not None:
        publish_segments(result.segments, namespace=namespace, service=service)
    for name, found in (estimated.metrics if estimated is not None else {}).items():
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.add_dimension(name=telemetry.METRIC_DIMENSION, value=name)
        metrics.add_metric(name=telemetry.ESTIMATED_QUALITY, unit=MetricUnit.NoUnit, value=found.value)
        metrics.flush_metrics()

    if insufficient:
        return
    for feature in (*report.features, report.prediction):
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.add_dimension(name=telemetry.FEATURE_DIMENSION, value=feature.name)
        if feature.drift is not None:
            metrics.add_metric(name=telemetry.FEATURE_DRIFTED, unit=MetricUnit.Count, value=int(feature.drift))
        for name, field in _FEATURE_METRICS:
            value = getattr(feature, field)
            if value is not None:
                metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
        metrics.flush_metrics()

    for quality in result.quality:
        if quality.value is None:
            continue
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.add_dimension(name=telemetry.MODEL_VERSION_DIMENSION, value=quality.model_version)
        metrics.add_metric(name=telemetry.MODEL_QUALITY, unit=MetricUnit.NoUnit, value=quality.value)
        metrics.add_metric(name=telemetry.LABELLED_ROWS, unit=MetricUnit.Count, value=quality.labelled_rows)
        metrics.flush_metrics()


def publish_segments(segments: SegmentReport, *, namespace: str, service: str) -> None:
    """Per segment (SegmentFeature, Segment) rows and rates; per segment feature (SegmentFeature) the gaps.

    A segment's rates are published when it has enough rows for them (min_rows, min_labelled).
    Only declared segments are published: a segment dimension value per training value or bin, so the
    number of metric streams is fixed by the recipe, not by what clients send.
    """
    for feature in segments.features:
        for segment in feature.segments:
            if not segment.declared:
                continue
            metrics = EphemeralMetrics(namespace=namespace, service=service)
            metrics.add_dimension(name=telemetry.SEGMENT_FEATURE_DIMENSION, value=feature.feature)
            metrics.add_dimension(name=telemetry.SEGMENT_DIMENSION, value=segment.segment)
            metrics.add_metric(name=telemetry.SEGMENT_ROWS, unit=MetricUnit.Count, value=segment.rows)
            for name, field, enough in _SEGMENT_METRICS:
                value = getattr(segment, field)
                if value is not None and getattr(segment, enough):
                    metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
            metrics.flush_metrics()
        gaps = [(g.name, g.value) for g in feature.gaps if g.value is not None]
        if not gaps:
            continue
        metrics = EphemeralMetrics(namespace=namespace, service=service)
        metrics.add_dimension(name=telemetry.SEGMENT_FEATURE_DIMENSION, value=feature.feature)
        for name, value in gaps:
            metrics.add_metric(name=_GAP_METRICS[name], unit=MetricUnit.NoUnit, value=value)
        metrics.flush_metrics()
