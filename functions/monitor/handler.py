"""The monitor Lambda, invoked by EventBridge Scheduler: one cycle over the last window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters import factory
from functions.monitor import metrics
from functions.monitor.config import MonitorConfig
from functions.monitor.service import LabelFiles, run_cycle, window_of

config = MonitorConfig.from_environ()
logger = Logger()
tracer = Tracer()
store = factory.monitoring_store(config.artifacts_bucket)
registry = factory.registry(config.artifacts_bucket, config.live_pointer_parameter)
publisher = factory.event_publisher(config.event_source, config.event_bus)


def monitor(now: datetime) -> dict[str, Any]:
    """Take new label files (when the stage declares them), then run one cycle for the window ending at the last
    whole hour before `now`."""
    labels = config.labels_uri
    result = run_cycle(
        store=store,
        registry=registry,
        policy=config.policy,
        window=window_of(now, config.policy.window_hours),
        label_files=LabelFiles(factory.lake_source(), labels) if labels else None,
    )
    metrics.publish(result, namespace=config.metrics_namespace, service=config.service)
    event_id = publisher.drift_detected(result.event) if result.event else None
    summary: dict[str, Any] = {
        "verdict": result.report.verdict,
        "rows": result.report.rows,
        "drift_share": result.report.drift_share,
        "drifted_features": result.report.drifted_features,
        "report": result.report_key,
        "html": result.html_key,
        "event_id": event_id,
        "labels": result.labels.model_dump(),
        "label_files": result.label_files.model_dump() if result.label_files else None,
        "estimated_quality": result.estimated.value if result.estimated else None,
    }
    if result.segments is not None:
        summary["segments"] = {
            "verdict": result.segments.verdict,
            "largest_gap": result.segments.largest_gap,
            "largest_gap_feature": result.segments.largest_gap_feature,
        }
    logger.info("monitor cycle", extra=summary)
    return summary


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return monitor(datetime.now(UTC))
