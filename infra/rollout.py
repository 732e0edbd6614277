"""The rollout of a candidate: its step functions and the Step Functions state machine (shadow, canary, decide).

The definition comes from stage.workflows.rollout, the builder the local stack also runs.
Its functions' access to the bucket and the pointer is granted by the stack (infra.stack);
the alarms that refuse a phase are read here.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.rollout.config import RolloutConfig
from infra.bundling import FUNCTIONS_DIR, PackageSpec
from infra.grants import allow
from infra.lambda_function import FunctionDefaults, WorkflowFunctions
from infra.state_machines import state_machine
from stage.environments import rollout_environment
from stage.names import ResourceNames
from stage.settings import StageSettings
from stage.workflows.rollout import RolloutSteps, rollout_definition, stage_phases

# The judge reads the capture with the monitor's code (numpy, no scikit-learn).
ROLLOUT_PACKAGE = PackageSpec(
    name="rollout",
    sources=("__init__.py", "core", "adapters", "monitor", "rollout"),
    requirements=FUNCTIONS_DIR / "monitor" / "requirements.txt",
)
STEP_HANDLERS = {
    "start": "functions.rollout.handler.start_handler",
    "judge": "functions.rollout.handler.judge_handler",
    "finish": "functions.rollout.handler.finish_handler",
}
LAUNCH_HANDLER = "functions.rollout.handler.launch_handler"


class Rollout(Construct):
    """The rollout state machine, its steps, and `launch`, which starts it (the retrain pipeline's step)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        settings: StageSettings,
        topic: sns.ITopic,
        alarms: Sequence[cloudwatch.IAlarm],
        defaults: FunctionDefaults,
    ) -> None:
        super().__init__(scope, construct_id)
        rollout = settings.rollout
        workflow = WorkflowFunctions(
            scope=self,
            workflow="rollout",
            name_of=names.rollout_function,
            defaults=defaults,
            environment=rollout_environment(settings, names, alarm_names=[a.alarm_name for a in alarms]),
        )
        code = defaults.code(ROLLOUT_PACKAGE)
        self.step_functions = {
            step: workflow.function(
                step, handler, code, memory_mb=rollout.function_memory_mb, timeout_seconds=rollout.timeout_seconds
            )
            for step, handler in STEP_HANDLERS.items()
        }
        definition = rollout_definition(
            RolloutSteps(notify_topic=topic.topic_arn, **{s: f.function_arn for s, f in self.step_functions.items()}),
            stage_phases(settings),
            step_timeout_seconds=rollout.timeout_seconds,
        )
        self.state_machine = state_machine(
            self,
            "StateMachine",
            name=names.rollout_state_machine,
            definition=definition,
            # Two phases of at most a day each, with their settle time and steps.
            timeout=Duration.days(3),
            defaults=defaults,
            invokes=("InvokeRolloutSteps", [f.function_arn for f in self.step_functions.values()]),
        )
        judge = self.step_functions["judge"].role
        assert judge is not None
        allow(judge, "ReadAlarmStates", ["cloudwatch:DescribeAlarms"], [a.alarm_arn for a in alarms])

        self.launch = workflow.function("launch", LAUNCH_HANDLER, code, memory_mb=512, timeout_seconds=30)
        self.launch.add_environment(RolloutConfig.variable("state_machine_arn"), self.state_machine.state_machine_arn)
        self.state_machine.grant_start_execution(self.launch)
