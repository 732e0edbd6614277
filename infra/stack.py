"""The one stack of a stage: wires the components, grants access between them, owns the outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.data_source import DataSource
from functions.core.events import DRIFT_DETECTED, event_source
from functions.core.layout import (
    ASYNC_POISON_PREFIX,
    ASYNC_PREFIX,
    ASYNC_REQUESTS_PREFIX,
    ASYNC_RESULTS_PREFIX,
    BATCH_PREFIX,
    BATCH_RUNS_PREFIX,
    CAPTURE_ERRORS_PREFIX,
    CAPTURE_PREFIX,
    FEEDBACK_PREFIX,
    GATE_DECISIONS_PREFIX,
    LABELS_LEDGER_KEY,
    MODELS_PREFIX,
    QUALITY_HISTORY_KEY,
    RECIPE_SOURCE_PREFIX,
    REPORTS_PREFIX,
    RETRAIN_CANDIDATES_PREFIX,
    RETRAIN_RUNS_PREFIX,
    RETRAIN_TRIGGER_KEY,
    ROLLOUT_PREFIX,
    SAGEMAKER_OUTPUT_PREFIX,
    TABLE_PARTS_PREFIX,
    TABLE_PREFIX,
)
from functions.core.registry import POINTER_LOCK_SUFFIX
from infra.async_jobs import AsyncJobs
from infra.grants import GET, PUT, ArtifactGrants, allow, grant_data_source, grant_label_files
from infra.lambda_function import FunctionDefaults
from infra.monitoring import Monitoring
from infra.observability import Observability
from infra.retrain import Retrain
from infra.rollout import Rollout
from infra.serving import Serving
from infra.storage import Storage
from stage.environments import inference_environment, monitor_environment, retrain_environment, worker_environment
from stage.names import ResourceNames
from stage.settings import StageSettings

_POINTER_ACTIONS = ("ssm:GetParameter", "ssm:PutParameter")
# Rollback also reads the pointer's history, to find what was live before the version it restores.
_POINTER_HISTORY = "ssm:GetParameterHistory"
# The pointer's lock: created, read and deleted by whoever moves the pointer (functions.adapters.live_pointer).
_POINTER_LOCK_ACTIONS = ("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter")


class SlipwayStack(Stack):
    """Every component of one stage: storage, serving, observability, monitoring, async jobs, retrain."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StageSettings, names: ResourceNames, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.storage = Storage(self, "Storage", names=names, retain_data=settings.storage.retain_data)
        defaults = FunctionDefaults.of(settings)

        self.serving = Serving(
            self,
            "Serving",
            names=names,
            inference=settings.inference,
            provisioned_concurrency=settings.provisioned_concurrency,
            api=settings.api,
            defaults=defaults,
            environment=inference_environment(settings, names),
            snap_start=settings.snap_start,
            protect_log=settings.logs.protect_inference,
        )
        # Every grant between components is made here, through infra.grants.
        grants = ArtifactGrants(self.storage.bucket)
        pointer = self.storage.live_pointer.parameter_arn
        grants.allow(self.serving.role, "ReadModelBundles", [GET], [MODELS_PREFIX])
        _allow_reading_the_pointer(self.serving.role, pointer)

        self.observability = Observability(
            self,
            "Observability",
            names=names,
            alarms=settings.alarms,
            front_door=self.serving.front_door_metrics(),
            function=self.serving.function,
        )

        # Each further component is one construct that takes its settings as keyword arguments,
        # gets its grants here, and registers its alarms and widgets with
        # `self.observability.add_alarm(...)` / `add_widgets(...)`; API routes go into infra.routes.ROUTES.
        self._add_monitoring(settings, names, grants, defaults)

        self.async_jobs = AsyncJobs(
            self,
            "AsyncJobs",
            names=names,
            settings=settings,
            bucket=grants.bucket,
            environment=worker_environment(settings, names, service=names.inference_service),
            observability=self.observability,
            defaults=defaults,
        )
        # /predict/async on the inference function: queue jobs (SendMessage only), store and read them.
        allow(self.serving.role, "SendAsyncJobs", ["sqs:SendMessage"], [self.async_jobs.requests_queue.queue_arn])
        grants.allow(self.serving.role, "StoreAsyncRequests", [PUT], [ASYNC_REQUESTS_PREFIX])
        grants.allow(self.serving.role, "ReadAsyncJobs", [GET], [ASYNC_REQUESTS_PREFIX, ASYNC_RESULTS_PREFIX])
        grants.allow_listing(self.serving.role, "ListAsync", [ASYNC_PREFIX])
        self._grant_async_jobs(grants, pointer)

        serving_alarms: list[cloudwatch.IAlarm] = [
            self.observability.fallback_alarm,
            self.observability.api_5xx_alarm,
            self.observability.last_good_alarm,
        ]
        self.rollout = Rollout(
            self, "Rollout", names=names, settings=settings, topic=self.observability.topic,
            alarms=serving_alarms, defaults=defaults,
        )  # fmt: skip
        self._grant_rollout(grants, pointer)
        CfnOutput(self, "RolloutStateMachineArn", value=self.rollout.state_machine.state_machine_arn)
        self.retrain = Retrain(
            self,
            "Retrain",
            names=names,
            retrain=settings.retrain,
            bucket=grants.bucket,
            topic=self.observability.topic,
            rollback_alarms=serving_alarms,
            launch_rollout=self.rollout.launch if settings.retrain.rollout in ("shadow", "canary") else None,
            manual_promotion=settings.retrain.rollout == "manual",
            environment=retrain_environment(settings, names, topic_arn=self.observability.topic.topic_arn),
            defaults=defaults,
        )
        self._grant_retrain(grants, pointer, settings.data)
        CfnOutput(self, "RetrainStateMachineArn", value=self.retrain.state_machine.state_machine_arn)

        # Invoked asynchronously (Scheduler, EventBridge rules): what they fail on is kept, not lost.
        for function in (self.monitoring.function, self.retrain.drift_trigger, self.retrain.rollback):
            self.observability.on_failure(function)

        CfnOutput(self, "EndpointUrl", value=self.serving.url, description="Base URL of the inference API (api.type)")
        if self.serving.api_keys:
            CfnOutput(
                self,
                "ApiKeyId",
                value=self.serving.api_keys[0].key_id,
                description="The first client's key: aws apigateway get-api-key --api-key <id> --include-value",
            )
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
                f"#dashboards:name={names.dashboard}"
            ),
            description="CloudWatch dashboard of this stage",
        )
        CfnOutput(self, "ArtifactsBucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "LivePointerParameter", value=self.storage.live_pointer.parameter_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)

    def _grant_async_jobs(self, grants: ArtifactGrants, pointer: str) -> None:
        """The async worker, fallback and batch functions: the live model, their jobs and batch objects."""
        jobs = self.async_jobs
        worker, fallback = _role(jobs.worker), _role(jobs.fallback)
        grants.allow(worker, "ReadModelsAndJobs", [GET], [MODELS_PREFIX, ASYNC_REQUESTS_PREFIX, ASYNC_RESULTS_PREFIX])
        grants.allow(fallback, "ReadJobs", [GET], [ASYNC_REQUESTS_PREFIX, ASYNC_RESULTS_PREFIX])
        grants.allow(fallback, "KeepPoison", [PUT], [ASYNC_POISON_PREFIX])
        plan, score = _role(jobs.batch_plan), _role(jobs.batch_score)
        grants.allow(plan, "WriteManifests", [PUT], [BATCH_RUNS_PREFIX])
        grants.allow_listing(plan, "ListBatch", [BATCH_PREFIX])
        grants.allow(score, "ReadModelsAndInputs", [GET], [MODELS_PREFIX, BATCH_PREFIX])
        grants.allow(score, "WriteOutputs", [PUT], [BATCH_PREFIX])
        for role in (worker, fallback):
            grants.allow(role, "WriteResults", [PUT], [ASYNC_RESULTS_PREFIX])
            grants.allow_listing(role, "ListAsync", [ASYNC_PREFIX])
        for role in (worker, fallback, score):
            _allow_reading_the_pointer(role, pointer)
        machine = jobs.batch_state_machine.role
        grants.allow(machine, "ReadManifestsWriteResults", [GET, PUT], [BATCH_RUNS_PREFIX])

    def _grant_retrain(self, grants: ArtifactGrants, pointer: str, data: DataSource) -> None:
        """The retrain steps, trigger, rollback watcher and SageMaker job: only what each reads and writes."""
        retrain = self.retrain
        role = {step: _role(function) for step, function in retrain.step_functions.items()}
        # Prepare lists and reads the source (landing the recipe's table first, data.kind "recipe") and keeps the table.
        landing = [RECIPE_SOURCE_PREFIX] if data.kind == "recipe" else []
        grants.allow(role["prepare"], "KeepTable", [GET, PUT], [TABLE_PREFIX, *landing])
        grants.allow(role["prepare"], "ReadLabelledRows", [GET], [FEEDBACK_PREFIX, CAPTURE_PREFIX])
        grants.allow(role["prepare"], "WriteRunSnapshots", [PUT], [RETRAIN_RUNS_PREFIX])
        grants.allow_listing(
            role["prepare"], "ListSourcesAndRuns",
            [TABLE_PREFIX, *landing, FEEDBACK_PREFIX, CAPTURE_PREFIX, RETRAIN_RUNS_PREFIX],
        )  # fmt: skip
        grant_data_source(role["prepare"], data)
        for reader in (role["train"], role["evaluate"]):
            grants.allow(reader, "ReadTableParts", [GET], [TABLE_PARTS_PREFIX])
        grants.allow(role["train"], "ReadRunTables", [GET], [RETRAIN_RUNS_PREFIX])
        grants.allow(role["train"], "WriteCandidates", [PUT], [RETRAIN_CANDIDATES_PREFIX])
        grants.allow(
            role["evaluate"], "ReadRunsCandidatesModels", [GET],
            [RETRAIN_RUNS_PREFIX, RETRAIN_CANDIDATES_PREFIX, MODELS_PREFIX],
        )  # fmt: skip
        grants.allow(role["evaluate"], "WriteDecisions", [PUT], [GATE_DECISIONS_PREFIX])
        _allow_reading_the_pointer(role["evaluate"], pointer)
        # Registering writes a candidate's objects only if absent (conditional writes): it reads no bundle.
        grants.allow(role["register"], "ReadCandidates", [GET], [RETRAIN_CANDIDATES_PREFIX])
        grants.allow(role["register"], "WriteModels", [PUT], [MODELS_PREFIX])
        rollback, trigger = _role(retrain.rollback), _role(retrain.drift_trigger)
        _allow_moving_the_pointer(grants, role["promote"], pointer)
        _allow_moving_the_pointer(grants, rollback, pointer, (*_POINTER_ACTIONS, _POINTER_HISTORY))
        grants.allow_keys(trigger, "ReadWriteCooldown", [GET, PUT], [RETRAIN_TRIGGER_KEY])
        grants.allow_listing(trigger, "ListCooldown", [RETRAIN_TRIGGER_KEY])
        for notifier in (retrain.state_machine.role, rollback):
            self._allow_notifying(notifier)
        if retrain.sagemaker_role is not None:
            # The job reads the run tables and writes its output; CollectCandidate moves the checked candidate on.
            grants.allow(retrain.sagemaker_role, "ReadRunTables", [GET], [RETRAIN_RUNS_PREFIX, TABLE_PARTS_PREFIX])
            grants.allow(retrain.sagemaker_role, "WriteJobOutput", [PUT], [SAGEMAKER_OUTPUT_PREFIX])
            grants.allow(role["collect"], "ReadJobOutput", [GET], [SAGEMAKER_OUTPUT_PREFIX])
            grants.allow(role["collect"], "WriteCandidates", [PUT], [RETRAIN_CANDIDATES_PREFIX])

    def _grant_rollout(self, grants: ArtifactGrants, pointer: str) -> None:
        """The rollout steps: start and finish move the pointer; the judge reads the capture and records verdicts."""
        role = {step: _role(function) for step, function in self.rollout.step_functions.items()}
        for mover in (role["start"], role["finish"]):
            _allow_moving_the_pointer(grants, mover, pointer)
        grants.allow(role["finish"], "WriteOutcomes", [PUT], [ROLLOUT_PREFIX])
        judge = role["judge"]
        _allow_reading_what_was_served(grants, judge)
        grants.allow(judge, "WriteVerdicts", [PUT], [ROLLOUT_PREFIX])
        _allow_reading_the_pointer(judge, pointer)
        self._allow_notifying(self.rollout.state_machine.role)

    def _allow_notifying(self, notifier: iam.IRole) -> None:
        """Publish to the alarm topic, through its key: the retrain and rollout state machines, rollback."""
        topic, key = self.observability.topic.topic_arn, self.observability.topic_key.key_arn
        allow(notifier, "PublishNotifications", ["sns:Publish"], [topic])
        allow(notifier, "EncryptNotifications", ["kms:Decrypt", "kms:GenerateDataKey"], [key])

    def _add_monitoring(
        self, settings: StageSettings, names: ResourceNames, grants: ArtifactGrants, defaults: FunctionDefaults
    ) -> None:
        """Capture pipeline and drift monitor, with the grants between them and the serving side."""
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            names=names,
            monitor=settings.monitor,
            bucket=grants.bucket,
            inference_logs=self.serving.log_group,
            environment=monitor_environment(settings, names),
            defaults=defaults,
        )
        monitor = self.monitoring.role
        _allow_reading_what_was_served(grants, monitor)
        grants.allow(monitor, "WriteReports", [PUT], [REPORTS_PREFIX])
        # The series of estimated and realized quality each report draws: read back, and missing (404) at first.
        grants.allow_keys(monitor, "ReadQualityHistory", [GET], [QUALITY_HISTORY_KEY])
        grants.allow_listing(monitor, "ListQualityHistory", [QUALITY_HISTORY_KEY])
        labels = settings.data.labels_location()
        if labels is not None:
            # Label files (data.labels): read them, turn them into feedback, remember which were taken.
            grant_label_files(monitor, labels)
            grants.allow(monitor, "StoreLabelFiles", [PUT], [FEEDBACK_PREFIX])
            grants.allow_keys(monitor, "LabelFilesLedger", [GET, PUT], [LABELS_LEDGER_KEY])
            # A missing ledger must read as missing (404), not as refused (403): listing its one key says so.
            grants.allow_listing(monitor, "ListLabelFilesLedger", [LABELS_LEDGER_KEY])
        _allow_reading_the_pointer(monitor, self.storage.live_pointer.parameter_arn)
        # Only this stage's DriftDetected: a dev monitor cannot post prod's source and start prod's retrain.
        allow(
            monitor,
            "PutDriftEvents",
            ["events:PutEvents"],
            [f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"],
            {"StringEquals": {"events:source": event_source(settings.project, settings.stage),
                              "events:detail-type": DRIFT_DETECTED}},
        )  # fmt: skip
        # /feedback on the inference function: store labels, nothing more (the monitor joins them to capture).
        grants.allow(self.serving.role, "StoreFeedback", [PUT], [FEEDBACK_PREFIX])
        # Firehose's own role (made in infra.monitoring): write objects it names itself under its prefixes.
        delivery = self.monitoring.delivery_role
        grants.allow(
            delivery, "WriteCapture", ["s3:PutObject", "s3:AbortMultipartUpload"],
            [CAPTURE_PREFIX, CAPTURE_ERRORS_PREFIX],
            "Firehose writes objects it names itself (hour partition, stream, time, uuid).",
        )  # fmt: skip
        allow(
            delivery, "LocateBucket", ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            [grants.bucket.bucket_arn],
        )  # fmt: skip
        self.monitoring.add_alarms(self.observability, monitor=settings.monitor)
        CfnOutput(self, "CaptureStreamName", value=self.monitoring.stream.delivery_stream_name)


def _allow_reading_the_pointer(reader: iam.IRole, pointer: str) -> None:
    allow(reader, "ReadLivePointer", ["ssm:GetParameter"], [pointer])


def _allow_reading_what_was_served(grants: ArtifactGrants, reader: iam.IRole) -> None:
    """Read the capture, the feedback and the model bundles: the monitor and rollout's judge."""
    grants.allow(reader, "ReadCaptureFeedbackModels", [GET], [CAPTURE_PREFIX, FEEDBACK_PREFIX, MODELS_PREFIX])
    grants.allow_listing(reader, "ListCaptureAndFeedback", [CAPTURE_PREFIX, FEEDBACK_PREFIX])


def _allow_moving_the_pointer(
    grants: ArtifactGrants, mover: iam.IRole, pointer: str, actions: Sequence[str] = _POINTER_ACTIONS
) -> None:
    """Read the model bundles, move the live pointer (`actions` on it) and take its lock: promote, rollback,
    rollout's start and finish."""
    grants.allow(mover, "ReadModels", [GET], [MODELS_PREFIX])
    allow(mover, "MoveLivePointer", actions, [pointer])
    allow(mover, "LockLivePointer", _POINTER_LOCK_ACTIONS, [pointer + POINTER_LOCK_SUFFIX])


def _role(function: lambda_.Function) -> iam.IRole:
    assert function.role is not None
    return function.role
