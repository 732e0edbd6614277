"""The rollout state machine's Lambda steps (start, judge, finish) and the step that starts a rollout (launch).

An input that is not the step's model raises MalformedEvent, which the state machine never
retries: it is caught, the rollout is ended with the live version untouched, and notified.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from functions.adapters import factory
from functions.adapters.retrain_control import StepFunctionsStarter
from functions.adapters.rollout_control import CloudWatchAlarms, S3Records
from functions.core.event_input import parse_event
from functions.core.registry import Registry
from functions.rollout import steps
from functions.rollout.config import RolloutConfig

logger = Logger()
tracer = Tracer()


@cache
def config() -> RolloutConfig:
    return RolloutConfig.from_environ()


def reset() -> None:
    """Forget the configuration read from the environment (the local stack sets a new one)."""
    config.cache_clear()


def _registry() -> Registry:
    return factory.registry(config().artifacts_bucket, config().live_pointer_parameter)


def _records() -> S3Records:
    return S3Records(factory.client("s3"), config().artifacts_bucket)


class LaunchInput(BaseModel):
    version: str = Field(min_length=1)
    reason: str = ""


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def start_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(steps.StartInput, event)
    started = steps.start(_registry(), request, now=datetime.now(UTC))
    logger.info("rollout phase started", extra={"candidate": request.candidate, **started})
    return started


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def judge_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(steps.JudgeInput, event)
    cfg = config()
    decision = steps.judge_phase(
        request,
        registry=_registry(),
        models=factory.model_store(cfg.artifacts_bucket),
        source=factory.monitoring_store(cfg.artifacts_bucket),
        alarms=CloudWatchAlarms(factory.client("cloudwatch")),
        alarm_names=cfg.alarm_names,
        records=_records(),
        policy=cfg.policy,
        drift_policy=cfg.drift_policy,
        now=datetime.now(UTC),
    )
    logger.info(
        "rollout phase judged", extra={k: v for k, v in decision.model_dump(mode="json").items() if k != "figures"}
    )
    return decision.model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def finish_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(steps.FinishInput, event)
    outcome = steps.finish(_registry(), request, _records(), now=datetime.now(UTC))
    logger.info("rollout finished", extra=outcome.model_dump(mode="json"))
    return outcome.model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def launch_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The retrain pipeline's step after Register: start the candidate's rollout (which decides by itself)."""
    request = parse_event(LaunchInput, event)
    cfg = config()
    if not cfg.state_machine_arn:
        raise ValueError("ROLLOUT_STATE_MACHINE_ARN is not set: there is no rollout to start")
    rollout_input = steps.execution_input(
        request.version, request.reason, bake_seconds=cfg.bake_seconds, settle_seconds=cfg.settle_seconds
    )
    starter = StepFunctionsStarter(factory.client("stepfunctions"), cfg.state_machine_arn)
    arn = starter.start(request.reason, extra={k: v for k, v in rollout_input.items() if k != "reason"})
    logger.info("rollout started", extra={"candidate": request.version, "execution_arn": arn})
    return {"candidate": request.version, "execution_arn": arn}
