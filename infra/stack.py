"""The one stack of a stage: wires the components, grants access between them, owns the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnElement, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.core.layout import CAPTURE_PREFIX, FEEDBACK_PREFIX, MODELS_PREFIX, REPORTS_PREFIX
from infra.async_jobs import AsyncJobs
from infra.lambda_function import FunctionDefaults
from infra.monitoring import CAPTURE_ERRORS_PREFIX, Monitoring
from infra.nag import acknowledge
from infra.observability import Observability
from infra.retrain import Retrain
from infra.serving import Serving
from infra.storage import Storage
from stage.environments import inference_environment, monitor_environment, retrain_environment, worker_environment
from stage.names import ResourceNames
from stage.settings import StageSettings


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
        )
        # Grants: read-only, and only the model bundles and the pointer.
        self.serving.allow_model_reads(bucket_objects_arn=self.storage.bucket.arn_for_objects(f"{MODELS_PREFIX}*"))
        self.serving.allow_pointer_reads(parameter_arn=self.storage.live_pointer.parameter_arn)
        bucket_resource = self.storage.bucket.node.default_child
        assert isinstance(bucket_resource, CfnElement)
        bucket_id = self.resolve(self.get_logical_id(bucket_resource))
        acknowledge(
            self.serving.role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{MODELS_PREFIX}*]",
            f"Read-only s3:GetObject on the {MODELS_PREFIX} prefix: model bundles are stored under their content "
            "hash, unknown until training runs, so the keys can only be named by prefix.",
        )

        self.observability = Observability(
            self,
            "Observability",
            names=names,
            alarms=settings.alarms,
            api=self.serving.api,
            function=self.serving.function,
        )

        # Each further component is one construct that takes its settings as keyword arguments,
        # gets its grants here, and registers its alarms and widgets with
        # `self.observability.add_alarm(...)` / `add_widgets(...)`; API routes go into infra.serving.ROUTES.
        self._add_monitoring(settings, names, bucket_id, defaults)

        self.async_jobs = AsyncJobs(
            self,
            "AsyncJobs",
            names=names,
            settings=settings,
            bucket=self.storage.bucket,
            pointer_parameter_arn=self.storage.live_pointer.parameter_arn,
            environment=worker_environment(settings, names, service=names.inference_service),
            observability=self.observability,
            defaults=defaults,
        )
        self.async_jobs.allow_submissions(self.serving.role)

        self.retrain = Retrain(
            self,
            "Retrain",
            names=names,
            retrain=settings.retrain,
            bucket=self.storage.bucket,
            live_pointer=self.storage.live_pointer,
            topic=self.observability.topic,
            topic_key=self.observability.topic_key,
            rollback_alarms=[self.observability.fallback_alarm, self.observability.api_5xx_alarm],
            environment=retrain_environment(settings, names, topic_arn=self.observability.topic.topic_arn),
            defaults=defaults,
        )
        CfnOutput(self, "RetrainStateMachineArn", value=self.retrain.state_machine.state_machine_arn)

        # Invoked asynchronously (Scheduler, EventBridge rules): what they fail on is kept, not lost.
        for function in (self.monitoring.function, self.retrain.drift_trigger, self.retrain.rollback):
            self.observability.on_failure(function)

        CfnOutput(self, "EndpointUrl", value=self.serving.api.url, description="Base URL of the inference API")
        if self.serving.api_key is not None:
            CfnOutput(
                self,
                "ApiKeyId",
                value=self.serving.api_key.key_id,
                description="aws apigateway get-api-key --api-key <id> --include-value",
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

    def _add_monitoring(
        self, settings: StageSettings, names: ResourceNames, bucket_id: str, defaults: FunctionDefaults
    ) -> None:
        """Capture pipeline and drift monitor, with the grants between them and the serving side."""
        bucket = self.storage.bucket
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            names=names,
            monitor=settings.monitor,
            bucket=bucket,
            inference_logs=self.serving.log_group,
            environment=monitor_environment(settings, names),
            defaults=defaults,
        )
        self.monitoring.allow(
            "ReadCaptureFeedbackModels",
            ["s3:GetObject"],
            [bucket.arn_for_objects(f"{prefix}*") for prefix in (CAPTURE_PREFIX, FEEDBACK_PREFIX, MODELS_PREFIX)],
        )
        self.monitoring.allow(
            "ListCaptureAndFeedback",
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            {"StringLike": {"s3:prefix": [f"{CAPTURE_PREFIX}*", f"{FEEDBACK_PREFIX}*"]}},
        )
        self.monitoring.allow("WriteReports", ["s3:PutObject"], [bucket.arn_for_objects(f"{REPORTS_PREFIX}*")])
        self.monitoring.allow("ReadLivePointer", ["ssm:GetParameter"], [self.storage.live_pointer.parameter_arn])
        self.monitoring.allow(
            "PutDriftEvents",
            ["events:PutEvents"],
            [f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"],
        )
        # /feedback on the inference function: store labels, look request ids up in the capture.
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="StoreFeedback", actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{FEEDBACK_PREFIX}*")]
            )
        )
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCapture", actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{CAPTURE_PREFIX}*")]
            )
        )
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListCapture",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURE_PREFIX}*"]}},
            )
        )
        for prefix in (CAPTURE_PREFIX, FEEDBACK_PREFIX, REPORTS_PREFIX, MODELS_PREFIX):
            acknowledge(
                self.monitoring.role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"Object access limited to the {prefix} prefix: capture and feedback objects are named by "
                "Firehose/hour and batch, reports by window, bundles by content hash; unknown until written.",
            )
        for prefix in (CAPTURE_PREFIX, FEEDBACK_PREFIX):
            acknowledge(
                self.serving.role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"/feedback writes labels under {FEEDBACK_PREFIX} (one object per batch) and looks request ids up "
                f"under {CAPTURE_PREFIX} (Firehose-named objects): keys exist only per prefix.",
            )
        for prefix in (CAPTURE_PREFIX, CAPTURE_ERRORS_PREFIX):
            acknowledge(
                self.monitoring.delivery_role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"Firehose writes under {prefix} objects it names itself (hour partition, stream, time, uuid).",
            )
        self.monitoring.add_alarms(self.observability, monitor=settings.monitor)
        CfnOutput(self, "CaptureStreamName", value=self.monitoring.stream.delivery_stream_name)
