"""The retrain pipeline on moto: the definition CDK deploys, run by moto's Step Functions with the real handlers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from functions.retrain import handler as steps_handler
from functions.rollout import handler as rollout_handler
from slipway.local.rollout import LocalRollout, topic
from slipway.local.stepfunctions import ExecutionResult, LocalStepFunctions
from stage.environments import retrain_environment
from stage.names import ResourceNames
from stage.settings import StageSettings
from stage.workflows.retrain import RetrainSteps, retrain_definition

STEPS = {
    "prepare": steps_handler.prepare_handler,
    "train": steps_handler.train_handler,
    "evaluate": steps_handler.evaluate_handler,
    "register": steps_handler.register_handler,
    "promote": steps_handler.promote_handler,
}


@dataclass
class LocalRetrain:
    """Creates the retrain state machine and its topic in moto and runs executions of it."""

    settings: StageSettings
    names: ResourceNames
    runner: LocalStepFunctions = field(init=False)
    state_machine_arn: str = field(init=False)
    topic_arn: str = field(init=False)
    rollout: LocalRollout = field(init=False)

    def __post_init__(self) -> None:
        region = self.names.region
        self.topic_arn = topic(self.names)
        # The rollout machine first: with retrain.rollout shadow or canary, a run ends by starting it.
        self.rollout = LocalRollout(self.settings, self.names, self.topic_arn)
        self.runner = LocalStepFunctions(region=region)
        configured = retrain_environment(self.settings, self.names)
        arns = {
            step: self.runner.register(self.names.retrain_function(step), fn, configured) for step, fn in STEPS.items()
        }
        launch = None
        if self.settings.retrain.rollout in ("shadow", "canary"):
            launch = self.runner.register(self.names.rollout_function("launch"), rollout_handler.launch_handler)
        definition = retrain_definition(
            RetrainSteps(
                notify_topic=self.topic_arn,
                launch_rollout=launch,
                manual_promotion=self.settings.retrain.rollout == "manual",
                **arns,
            ),
            train_timeout_seconds=self.settings.retrain.train_timeout_seconds,
            step_timeout_seconds=self.settings.retrain.step_timeout_seconds,
        )
        self.state_machine_arn = self.runner.create_state_machine(self.names.retrain_state_machine, definition)
        environment = retrain_environment(
            self.settings, self.names, state_machine_arn=self.state_machine_arn, topic_arn=self.topic_arn
        )
        # The handlers run in this process beside the inference handler: share only the retrain
        # configuration, never the Powertools service name or log level the inference logger reads.
        os.environ.update({key: value for key, value in environment.items() if not key.startswith("POWERTOOLS_")})
        steps_handler.reset()

    def run(self, reason: str = "manual", *, timeout_seconds: float = 300.0) -> ExecutionResult:
        """Start one run and wait for its end."""
        return self.runner.run(self.state_machine_arn, {"reason": reason}, timeout_seconds=timeout_seconds)

    def steps_run(self, result: ExecutionResult) -> list[str]:
        """The states an execution entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.runner.history(result.arn)
            if "stateEnteredEventDetails" in e
        ]

    def close(self) -> None:
        self.runner.close()
        self.rollout.close()
