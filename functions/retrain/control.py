"""What starts a retrain and what undoes a bad promotion: the drift trigger (cool-down) and the rollback watcher.

Light on purpose: these run in the small control package (no scikit-learn). Both are invoked
asynchronously by EventBridge: an event that is not theirs raises MalformedEvent and, after
Lambda's retries, lands in the failed-invocations queue (whose alarm notifies) with the error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from functions.adapters import factory
from functions.adapters.retrain_control import SnsNotifier, StepFunctionsStarter
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.errors import RegistryError
from functions.core.event_input import parse_event
from functions.core.events import DriftDetectedDetail
from functions.core.registry import LivePointer, Registry
from functions.retrain.config import config

logger = Logger()
tracer = Tracer()


class TriggerStore(Protocol):
    def last_trigger(self) -> datetime | None: ...
    def set_last_trigger(self, at: datetime) -> None: ...


class Starter(Protocol):
    def start(self, reason: str, *, at: datetime | None = None) -> str: ...


class Notifier(Protocol):
    def notify(self, subject: str, message: dict[str, Any]) -> None: ...


class DriftEvent(BaseModel):
    """The EventBridge event the drift trigger takes (what it reads of it)."""

    detail: DriftDetectedDetail


class AlarmDetail(BaseModel):
    alarmName: str = Field(min_length=1)  # noqa: N815 (CloudWatch's own field name)


class AlarmEvent(BaseModel):
    """The EventBridge 'CloudWatch Alarm State Change' event the rollback watcher takes (what it reads of it)."""

    detail: AlarmDetail


class TriggerOutcome(BaseModel):
    started: bool
    execution_arn: str | None = None
    reason: str


class RollbackOutcome(BaseModel):
    rolled_back: bool
    live: str | None
    reason: str


def cooldown_allows(last: datetime | None, now: datetime, cooldown: timedelta) -> bool:
    """Whether a new drift-triggered run may start: none yet, or the last started at least `cooldown` ago."""
    return last is None or now - last >= cooldown


def on_drift(
    detail: DriftDetectedDetail, store: TriggerStore, starter: Starter, *, cooldown: timedelta, now: datetime
) -> TriggerOutcome:
    """Start one run for a drift event (drift, or estimated quality below its threshold) unless one started within
    the cool-down (a storm starts one run)."""
    last = store.last_trigger()
    if not cooldown_allows(last, now, cooldown):
        return TriggerOutcome(started=False, reason=f"cool-down: last run started {last:%Y-%m-%d %H:%M:%S} UTC")
    store.set_last_trigger(now)
    drop = detail.estimated_quality
    drifted = [name for name in detail.drifted_features if name != "estimated_quality"]
    reasons = [f"drift on {len(drifted)} features (share {detail.drift_share:.2f})"] if drifted else []
    if drop is not None:
        reasons.append(f"estimated {drop.metric} {drop.value:.4f} below {drop.threshold:g}")
    reason = f"{' and '.join(reasons) or 'drift'} of {detail.model_version}"
    return TriggerOutcome(started=True, execution_arn=starter.start(reason, at=now), reason=reason)


def rollback_due(pointer: LivePointer, now: datetime, window: timedelta) -> bool:
    """An alarm rolls back only a promotion younger than `window` (older promotions are not its cause)."""
    return (
        pointer.action == "promote"
        and pointer.previous is not None
        and pointer.at is not None
        and now - pointer.at <= window
    )


def on_alarm(
    alarm_name: str, registry: Registry, notifier: Notifier, *, window: timedelta, now: datetime
) -> RollbackOutcome:
    """Roll back the last promotion when `alarm_name` fired within the window after it; notify either way it acts."""
    pointer = registry.live()
    if not rollback_due(pointer, now, window):
        return RollbackOutcome(
            rolled_back=False, live=pointer.version, reason="no promotion within the rollback window"
        )
    try:
        restored = registry.rollback(
            f"automatic: {alarm_name} fired within {window} of promoting {pointer.version}", now=now
        )
    except RegistryError as exc:
        return RollbackOutcome(rolled_back=False, live=pointer.version, reason=str(exc))
    notifier.notify(
        "Slipway rolled back the live model",
        {"alarm": alarm_name, "from": pointer.version, "to": restored.version, "reason": restored.reason},
    )
    return RollbackOutcome(rolled_back=True, live=restored.version, reason=restored.reason)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def drift_trigger_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge DriftDetected -> at most one run per cool-down (MalformedEvent for any other event)."""
    detail = parse_event(DriftEvent, event).detail
    cfg = config()
    if not cfg.state_machine_arn:
        raise ValueError("STATE_MACHINE_ARN is not set: the drift trigger has nothing to start")
    outcome = on_drift(
        detail,
        S3RetrainStore(factory.client("s3"), cfg.artifacts_bucket),
        StepFunctionsStarter(factory.client("stepfunctions"), cfg.state_machine_arn),
        cooldown=timedelta(minutes=cfg.policy.cooldown_minutes),
        now=datetime.now(UTC),
    )
    logger.info("drift trigger", extra=outcome.model_dump())
    return outcome.model_dump()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def rollback_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge 'CloudWatch Alarm State Change' to ALARM -> roll back a fresh promotion (or MalformedEvent)."""
    alarm = parse_event(AlarmEvent, event).detail.alarmName
    cfg = config()
    outcome = on_alarm(
        alarm,
        factory.registry(cfg.artifacts_bucket, cfg.live_pointer_parameter),
        SnsNotifier(factory.client("sns"), cfg.notify_topic_arn),
        window=timedelta(minutes=cfg.policy.rollback_window_minutes),
        now=datetime.now(UTC),
    )
    logger.info("rollback watcher", extra=outcome.model_dump())
    return outcome.model_dump()
