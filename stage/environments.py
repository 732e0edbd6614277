"""Function environments, built once from settings and names for both the CDK app and the local stack."""

from __future__ import annotations

from functions.core.events import event_source
from stage.names import ResourceNames
from stage.settings import StageSettings


def inference_environment(settings: StageSettings, names: ResourceNames) -> dict[str, str]:
    """The inference function's variables: the aliases of functions.inference.config.InferenceConfig."""
    inference = settings.inference
    return {
        "ARTIFACTS_BUCKET": names.artifacts_bucket,
        "LIVE_POINTER_PARAMETER": names.live_pointer_parameter,
        "POINTER_REFRESH_SECONDS": str(inference.pointer_refresh_seconds),
        "MAX_INSTANCES": str(inference.max_instances),
        "MAX_BODY_BYTES": str(inference.max_body_bytes),
        "CAPTURE_SAMPLING_RATE": str(settings.capture.sampling_rate),
        "REQUESTS_QUEUE_URL": names.queue_url(names.requests_queue),
        "POWERTOOLS_SERVICE_NAME": names.inference_service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def worker_environment(settings: StageSettings, names: ResourceNames, *, service: str) -> dict[str, str]:
    """Variables of the async worker, the dead-letter fallback and the batch functions (WorkerConfig)."""
    return {
        "ARTIFACTS_BUCKET": names.artifacts_bucket,
        "LIVE_POINTER_PARAMETER": names.live_pointer_parameter,
        "POINTER_REFRESH_SECONDS": str(settings.inference.pointer_refresh_seconds),
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def monitor_environment(settings: StageSettings, names: ResourceNames) -> dict[str, str]:
    """The monitor function's variables: the aliases of functions.monitor.config.MonitorConfig."""
    monitor = settings.monitor
    return {
        "ARTIFACTS_BUCKET": names.artifacts_bucket,
        "LIVE_POINTER_PARAMETER": names.live_pointer_parameter,
        "WINDOW_HOURS": str(monitor.window_hours),
        "QUALITY_WINDOW_HOURS": str(monitor.quality_window_hours),
        "DRIFT_POLICY": monitor.drift.model_dump_json(),
        "EVENT_SOURCE": event_source(settings.project, settings.stage),
        "EVENT_BUS_NAME": "default",
        "POWERTOOLS_SERVICE_NAME": names.monitor_service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def retrain_environment(
    settings: StageSettings, names: ResourceNames, *, state_machine_arn: str = "", topic_arn: str = ""
) -> dict[str, str]:
    """The retrain functions' variables: the aliases of functions.retrain.config.RetrainConfig."""
    retrain = settings.retrain
    return {
        "ARTIFACTS_BUCKET": names.artifacts_bucket,
        "LIVE_POINTER_PARAMETER": names.live_pointer_parameter,
        "GATE_TOLERANCE": str(retrain.gate_tolerance),
        "GATE_FLOOR": "" if retrain.gate_floor is None else str(retrain.gate_floor),
        "ALLOW_INCOMPATIBLE_SPEC": str(retrain.allow_incompatible_spec).lower(),
        "COOLDOWN_MINUTES": str(retrain.cooldown_minutes),
        "ROLLBACK_WINDOW_MINUTES": str(retrain.rollback_window_minutes),
        "STATE_MACHINE_ARN": state_machine_arn,
        "NOTIFY_TOPIC_ARN": topic_arn,
        "POWERTOOLS_SERVICE_NAME": names.retrain_service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
