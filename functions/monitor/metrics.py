"""A cycle's findings as CloudWatch metrics, in Embedded Metric Format documents on stdout."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from functions.core import telemetry
from functions.monitor.service import CycleResult

_FEATURE_METRICS = (
    (telemetry.FEATURE_PSI, "psi"),
    (telemetry.FEATURE_JS, "js"),
    (telemetry.FEATURE_KS, "ks"),
    (telemetry.FEATURE_LINF, "linf"),
    (telemetry.FEATURE_MISSING_RATE, "missing_rate"),
    (telemetry.FEATURE_OUT_OF_RANGE, "out_of_range"),
)


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
    overall.flush_metrics()

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
