"""The rollout state machine's Lambda steps (start, judge, finish) and the step that starts a rollout (launch).

An input that is not the step's model raises MalformedEvent, which the state machine never
retries: it is caught, the rollout is ended with the live version untouched, and notified.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from pydantic import BaseModel, Field

from functions.adapters import factory
from functions.adapters.retrain_control import StepFunctionsStarter
from functions.adapters.rollout_control import CloudWatchAlarms, S3Records
from functions.core.registry import Registry
from functions.core.step_handler import StepHandlers
from functions.rollout import steps
from functions.rollout.config import RolloutConfig

logger = Logger()
tracer = Tracer()
step_handler = StepHandlers(logger, tracer)


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


@step_handler(steps.StartInput)
def start_handler(request: steps.StartInput) -> dict[str, Any]:
    started = steps.start(_registry(), request, now=datetime.now(UTC))
    logger.info("rollout phase started", extra={"candidate": request.candidate, **started})
    return started


@step_handler(steps.JudgeInput)
def judge_handler(request: steps.JudgeInput) -> steps.PhaseDecision:
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
    logger.info("rollout phase judged", extra=decision.model_dump(mode="json", exclude={"figures"}))
    return decision


@step_handler(steps.FinishInput, logged="rollout finished")
def finish_handler(request: steps.FinishInput) -> steps.Outcome:
    return steps.finish(_registry(), request, _records(), now=datetime.now(UTC))


@step_handler(LaunchInput)
def launch_handler(request: LaunchInput) -> dict[str, Any]:
    """The retrain pipeline's step after Register: start the candidate's rollout (which decides by itself)."""
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
