"""Function environments, built from each function's configuration model for the CDK app and the local stack.

The model (functions/*/config.py) is the single definition of a function's variables:
the function parses them with it at cold start, and here the same model, filled from
the stage's settings and names, writes them. Powertools' own variables come on top.
"""

from __future__ import annotations

from collections.abc import Sequence

from functions.core.events import event_source
from functions.inference.config import InferenceConfig, WorkerConfig
from functions.monitor.config import MonitorConfig
from functions.retrain.config import RetrainConfig
from functions.rollout.config import RolloutConfig
from stage.names import ResourceNames
from stage.settings import StageSettings


def powertools_environment(names: ResourceNames, *, service: str) -> dict[str, str]:
    """The variables Powertools reads itself: service name, metrics namespace, log level."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def _stores(names: ResourceNames) -> dict[str, str]:
    """Where every function finds the models: the artifacts bucket and the live pointer."""
    return {"artifacts_bucket": names.artifacts_bucket, "live_pointer_parameter": names.live_pointer_parameter}


def inference_environment(settings: StageSettings, names: ResourceNames) -> dict[str, str]:
    """The inference function's variables (InferenceConfig)."""
    inference = settings.inference
    config = InferenceConfig(
        **_stores(names),
        pointer_refresh_seconds=inference.pointer_refresh_seconds,
        front_door=settings.api.type,
        max_instances=inference.max_instances,
        max_body_bytes=inference.max_body_bytes,
        capture_sampling_rate=settings.capture.sampling_rate,
        row_key=settings.data.key,
        model_name=inference.model_name,
        requests_queue_url=names.queue_url(names.requests_queue),
    )
    return {**config.to_environment(), **powertools_environment(names, service=names.inference_service)}


def worker_environment(settings: StageSettings, names: ResourceNames, *, service: str) -> dict[str, str]:
    """Variables of the async worker, the dead-letter fallback and the batch functions (WorkerConfig)."""
    config = WorkerConfig(
        **_stores(names),
        pointer_refresh_seconds=settings.inference.pointer_refresh_seconds,
    )
    return {**config.to_environment(), **powertools_environment(names, service=service)}


def monitor_environment(settings: StageSettings, names: ResourceNames) -> dict[str, str]:
    """The monitor function's variables (MonitorConfig, which reads Powertools' service and namespace too)."""
    config = MonitorConfig(
        **_stores(names),
        policy=settings.monitor,
        labels_uri=settings.data.labels,
        event_source=event_source(settings.project, settings.stage),
        event_bus="default",
        metrics_namespace=names.metrics_namespace,
        service=names.monitor_service,
    )
    return {**powertools_environment(names, service=names.monitor_service), **config.to_environment()}


def capture_settle_seconds(settings: StageSettings) -> int:
    """How long after a rollout phase's bake its last requests are in capture/ on AWS: Firehose's buffer + 60 s."""
    return settings.monitor.capture_buffer_seconds + 60


def rollout_environment(
    settings: StageSettings,
    names: ResourceNames,
    *,
    alarm_names: Sequence[str] = (),
    state_machine_arn: str | None = None,
    settle_seconds: int | None = None,
) -> dict[str, str]:
    """The rollout functions' variables (RolloutConfig).

    A phase is judged `settle_seconds` after its bake: by default capture's delivery delay on AWS
    (Firehose's buffer and a minute), which the local stack, shipping every few seconds, shortens.
    """
    rollout = settings.rollout
    config = RolloutConfig(
        **_stores(names),
        policy=rollout.policy,
        drift_policy=settings.monitor.drift,
        alarm_names=list(alarm_names),
        state_machine_arn=state_machine_arn,
        bake_seconds=rollout.bake_minutes * 60,
        settle_seconds=capture_settle_seconds(settings) if settle_seconds is None else settle_seconds,
    )
    return {**config.to_environment(), **powertools_environment(names, service=names.rollout_service)}


def retrain_environment(
    settings: StageSettings,
    names: ResourceNames,
    *,
    state_machine_arn: str | None = None,
    topic_arn: str | None = None,
) -> dict[str, str]:
    """The retrain functions' variables (RetrainConfig); what a function does not need is left unset."""
    config = RetrainConfig(
        **_stores(names),
        recipe=settings.recipe,
        policy=settings.retrain,
        state_machine_arn=state_machine_arn,
        notify_topic_arn=topic_arn,
        data_source=settings.data,
    )
    return {**config.to_environment(), **powertools_environment(names, service=names.retrain_service)}
