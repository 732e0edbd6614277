"""The retrain pipeline: step functions, the Step Functions state machine, its schedule, the drift rule, rollback.

The definition comes from stage.workflows.retrain, the builder the local stack
also runs, so what moto executes locally is what CloudFormation deploys.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.core.events import DRIFT_DETECTED, event_source
from functions.retrain.config import RetrainConfig
from infra.bundling import FUNCTIONS_DIR, PROJECT_ROOT, PYARROW_TRIM_DIRS, PackageSpec
from infra.grants import allow
from infra.lambda_function import FunctionDefaults, WorkflowFunctions
from infra.nag import acknowledge
from infra.sagemaker import ENTRY_POINT, SOURCES, source_archive, training_image_uri
from infra.state_machines import state_machine
from stage.names import ResourceNames
from stage.settings import RetrainSettings
from stage.workflows.retrain import RetrainSteps, SageMakerTraining, retrain_definition

RETRAIN_DIR = FUNCTIONS_DIR / "retrain"
# scikit-learn, SciPy, skl2onnx, onnx and ONNX Runtime: 315 MB as installed; test suites and onnx's
# backend test data (67 MB, never imported) go. What is left, with pandas and pyarrow (over the 250 MB
# limit unzipped), ships as one zip unpacked at cold start (functions/dependencies.py); docs/retrain.md
# has the measured sizes.
TRAINING_PACKAGE = PackageSpec(
    name="training",
    sources=SOURCES,  # what the SageMaker job imports too
    requirements=RETRAIN_DIR / "requirements.txt",
    trim_dirs=("onnx/backend/test", *PYARROW_TRIM_DIRS),
    root_sources=(PROJECT_ROOT / "model",),
    # The recipe's own libraries (LightGBM, say), beside Slipway's set.
    extra_requirements=(PROJECT_ROOT / "model" / "requirements.txt",),
    zip_dependencies=True,
    over_limit=(
        "trim model/requirements.txt, or train on the managed engine instead of Lambda: "
        '"retrain": {"engine": "sagemaker"} in the stage\'s settings (docs/retrain.md)'
    ),
)
# /tmp of the training package's functions: its dependencies unpack there (several hundred MiB,
# more with a recipe's own libraries; docs/retrain.md has the measured size); Lambda's default
# 512 MiB would leave nothing for anything else.
TRAINING_EPHEMERAL_STORAGE_MB = 2048
CONTROL_PACKAGE = PackageSpec(
    name="retrain-control",
    sources=("__init__.py", "core", "adapters", "retrain"),
    requirements=RETRAIN_DIR / "control-requirements.txt",
)
STEP_HANDLERS = {
    "prepare": "functions.retrain.handler.prepare_handler",
    "train": "functions.retrain.handler.train_handler",
    "evaluate": "functions.retrain.handler.evaluate_handler",
    "register": "functions.retrain.handler.register_handler",
    "promote": "functions.retrain.handler.promote_handler",
}
# Engine 'sagemaker' only: after the training job, its candidate checked and stored for Evaluate.
COLLECT_HANDLER = "functions.retrain.handler.collect_handler"


class Retrain(Construct):
    """The retrain state machine and what starts it (schedule, drift events, by hand) or undoes it (alarms).

    Its functions' (and the SageMaker job's) access to the bucket, the pointer and the alarm
    topic is granted by the stack (infra.stack).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        retrain: RetrainSettings,
        bucket: s3.IBucket,
        topic: sns.ITopic,
        rollback_alarms: list[cloudwatch.IAlarm],
        environment: dict[str, str],
        defaults: FunctionDefaults,
        launch_rollout: lambda_.IFunction | None = None,
        manual_promotion: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sagemaker_role: iam.Role | None = None
        self._names = names
        self._environment = environment
        workflow = WorkflowFunctions(
            scope=self, workflow="retrain", name_of=names.retrain_function, defaults=defaults, environment=environment
        )
        training_code = defaults.code(TRAINING_PACKAGE)
        handlers = {**STEP_HANDLERS, **({"collect": COLLECT_HANDLER} if retrain.engine == "sagemaker" else {})}
        self.step_functions = {
            step: workflow.function(
                step, handler, training_code,
                memory_mb=retrain.train_memory_mb if step in ("train", "evaluate") else 1024,
                timeout_seconds=retrain.train_timeout_seconds if step == "train" else retrain.step_timeout_seconds,
                ephemeral_storage_mb=TRAINING_EPHEMERAL_STORAGE_MB,
            )
            for step, handler in handlers.items()
        }  # fmt: skip

        sagemaker = self._sagemaker(retrain, bucket) if retrain.engine == "sagemaker" else None
        steps = RetrainSteps(
            notify_topic=topic.topic_arn,
            launch_rollout=launch_rollout.function_arn if launch_rollout is not None else None,
            manual_promotion=manual_promotion,
            **{step: fn.function_arn for step, fn in self.step_functions.items()},
        )
        definition = retrain_definition(
            steps,
            train_timeout_seconds=retrain.train_timeout_seconds,
            step_timeout_seconds=retrain.step_timeout_seconds,
            sagemaker=sagemaker,
        )
        invoked = [f.function_arn for f in self.step_functions.values()]
        self.state_machine = state_machine(
            self,
            "StateMachine",
            name=names.retrain_state_machine,
            definition=definition,
            timeout=Duration.seconds(int(definition["TimeoutSeconds"])),
            defaults=defaults,
            invokes=(
                "InvokeRetrainSteps",
                invoked + ([launch_rollout.function_arn] if launch_rollout is not None else []),
            ),
        )
        machine = self.state_machine.role
        if sagemaker is not None:
            jobs = Stack.of(self).format_arn(service="sagemaker", resource="training-job", resource_name="*")
            allow(
                machine, "RunTrainingJobs",
                ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"], [jobs],
            )  # fmt: skip
            allow(machine, "PassTrainingRole", ["iam:PassRole"], [sagemaker.role_arn])
            acknowledge(
                machine,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:{Stack.of(self).region}:"
                "<AWS::AccountId>:training-job/*]",
                "Each run's training job is named after its execution (the run id), known only when the run starts; "
                "the state machine may create, describe and stop training jobs and nothing else of SageMaker.",
            )

        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=names.retrain_schedule,
            description="Scheduled retrain (retrain.schedule)",
            schedule=scheduler.ScheduleExpression.expression(retrain.schedule),
            target=scheduler_targets.StepFunctionsStartExecution(
                self.state_machine, input=scheduler.ScheduleTargetInput.from_object({"reason": "schedule"})
            ),
        )

        control_code = defaults.code(CONTROL_PACKAGE)
        self.drift_trigger = workflow.function(
            "trigger",
            "functions.retrain.control.drift_trigger_handler",
            control_code,
            memory_mb=512,
            timeout_seconds=30,
        )
        self.drift_trigger.add_environment(
            RetrainConfig.variable("state_machine_arn"), self.state_machine.state_machine_arn
        )
        self.state_machine.grant_start_execution(self.drift_trigger)
        self.drift_rule = events.Rule(
            self,
            "DriftRule",
            description="DriftDetected from the monitor starts a retrain (cool-down in the trigger)",
            event_pattern=events.EventPattern(
                source=[event_source(names.project, names.stage)], detail_type=[DRIFT_DETECTED]
            ),
            targets=[event_targets.LambdaFunction(self.drift_trigger, retry_attempts=2)],
        )

        self.rollback = workflow.function(
            "rollback", "functions.retrain.control.rollback_handler", control_code, memory_mb=512, timeout_seconds=30
        )
        self.rollback_rule = events.Rule(
            self,
            "RollbackRule",
            description="A fallback-rate, 5XX or last-good alarm entering ALARM soon after a promotion rolls it back",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn for alarm in rollback_alarms],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[event_targets.LambdaFunction(self.rollback, retry_attempts=2)],
        )

    def _sagemaker(self, retrain: RetrainSettings, bucket: s3.IBucket) -> SageMakerTraining:
        """The managed engine's role, source archive and job settings (engine 'sagemaker'; see docs/retrain.md).

        The role reads the run tables and writes the jobs' output (granted by the stack), reads its
        source archive, and writes its job's logs; nothing else.
        """
        role = iam.Role(
            self,
            "SageMakerTrainingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{self._names.retrain_state_machine}: SageMaker training job, run tables and job output only",
        )
        self.sagemaker_role = role
        stack = Stack.of(self)
        # The asset is staged (copied into the cloud assembly) as it is made: the built file can go after.
        with tempfile.TemporaryDirectory(prefix="slipway-sagemaker-") as built:
            self.training_source = s3_assets.Asset(self, "TrainingSource", path=str(source_archive(Path(built))))
        source = self.training_source
        allow(role, "ReadSourceArchive", ["s3:GetObject"], [source.bucket.arn_for_objects(source.s3_object_key)])
        job_logs = stack.format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/TrainingJobs*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )  # fmt: skip
        allow(role, "WriteJobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                     "logs:DescribeLogStreams"], [job_logs])  # fmt: skip
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{stack.region}:<AWS::AccountId>:log-group:"
            "/aws/sagemaker/TrainingJobs*]",
            "SageMaker writes each job's log streams, named at run time, under its fixed log group "
            "/aws/sagemaker/TrainingJobs; the role may write there and nowhere else in CloudWatch Logs.",
        )
        return SageMakerTraining(
            image_uri=retrain.sagemaker_image_uri or training_image_uri(stack.region),
            role_arn=role.role_arn,
            instance_type=retrain.sagemaker_instance_type,
            instance_count=retrain.sagemaker_instance_count,
            volume_gb=retrain.sagemaker_volume_gb,
            max_runtime_seconds=retrain.sagemaker_max_runtime_seconds,
            bucket=bucket.bucket_name,
            source_uri=self.training_source.s3_object_url,
            entry_point=ENTRY_POINT,
            region=stack.region,
            recipe=self._environment[RetrainConfig.variable("recipe")],
            code_revision=self._environment.get(RetrainConfig.variable("code_revision")),
        )
