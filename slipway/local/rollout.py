"""The rollout state machine on moto: the definition CDK deploys, run by moto's Step Functions, real handlers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import boto3

from functions.rollout import handler as steps_handler
from functions.rollout.steps import execution_input
from slipway.local.monitoring import LOCAL_SETTLE_SECONDS
from slipway.local.stepfunctions import ExecutionResult, LocalStepFunctions
from stage.environments import rollout_environment
from stage.names import ResourceNames
from stage.settings import StageSettings
from stage.workflows.rollout import RolloutSteps, rollout_definition, stage_phases

STEPS = {"start": steps_handler.start_handler, "judge": steps_handler.judge_handler,
         "finish": steps_handler.finish_handler}  # fmt: skip


@dataclass
class LocalRollout:
    """Creates the rollout state machine (shadow, then canary) in moto and runs executions of it."""

    settings: StageSettings
    names: ResourceNames
    topic_arn: str
    runner: LocalStepFunctions = field(init=False)
    state_machine_arn: str = field(init=False)
    environment: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.runner = LocalStepFunctions(region=self.names.region)
        arns = {step: self.runner.register(self.names.rollout_function(step), fn) for step, fn in STEPS.items()}
        definition = rollout_definition(
            RolloutSteps(notify_topic=self.topic_arn, **arns),
            stage_phases(self.settings),
            step_timeout_seconds=self.settings.rollout.timeout_seconds,
        )
        self.state_machine_arn = self.runner.create_state_machine(self.names.rollout_state_machine, definition)
        self.environment = rollout_environment(
            self.settings, self.names, state_machine_arn=self.state_machine_arn, settle_seconds=LOCAL_SETTLE_SECONDS
        )
        # The handlers run in this process beside the others: share only the rollout configuration.
        os.environ.update({k: v for k, v in self.environment.items() if not k.startswith("POWERTOOLS_")})
        steps_handler.reset()

    def start(
        self, candidate: str, reason: str, *, bake_seconds: int, settle_seconds: int = LOCAL_SETTLE_SECONDS
    ) -> str:
        """Start rolling `candidate` out (each phase baking `bake_seconds`); the execution's ARN."""
        given = execution_input(candidate, reason, bake_seconds=bake_seconds, settle_seconds=settle_seconds)
        return self.runner.start(self.state_machine_arn, given)

    def wait(self, execution_arn: str, *, timeout_seconds: float = 600.0) -> ExecutionResult:
        return self.runner.wait(execution_arn, timeout_seconds=timeout_seconds)

    def steps_run(self, result: ExecutionResult) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.runner.history(result.arn)
                if "stateEnteredEventDetails" in e]  # fmt: skip

    def close(self) -> None:
        self.runner.close()


def topic(names: ResourceNames) -> str:
    return str(boto3.client("sns", region_name=names.region).create_topic(Name=names.alarm_topic)["TopicArn"])
