"""Data capture (CloudWatch Logs subscription -> Firehose -> S3, hourly) and the scheduled drift monitor."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from functions.core import telemetry
from functions.core.capture import CAPTURE_FILTER_PATTERN
from functions.core.layout import CAPTURE_ERRORS_PREFIX, CAPTURE_PREFIX
from infra.bundling import FUNCTIONS_DIR, PYARROW_TRIM_DIRS, PackageSpec
from infra.grants import allow
from infra.lambda_function import FunctionDefaults, python_function
from infra.observability import PERIOD, Observability, one_period_alarm
from stage.names import ResourceNames
from stage.settings import MonitorSettings

MONITOR_HANDLER = "functions.monitor.handler.lambda_handler"
MONITOR_PACKAGE = PackageSpec(
    name="monitor",
    sources=("__init__.py", "core", "adapters", "lake", "monitor"),
    requirements=FUNCTIONS_DIR / "monitor" / "requirements.txt",
    trim_dirs=PYARROW_TRIM_DIRS,
)


class Monitoring(Construct):
    """Ships capture lines of the inference log group to S3 and runs the monitor on a schedule.

    Firehose decompresses the CloudWatch Logs envelope and extracts each log message
    (built-in processors, no transform Lambda), so S3 holds the capture JSON lines
    themselves, one object per buffer under capture/YYYY/MM/DD/HH/. The stack grants
    the monitor its reads and writes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        monitor: MonitorSettings,
        bucket: s3.IBucket,
        inference_logs: logs.ILogGroup,
        environment: dict[str, str],
        defaults: FunctionDefaults,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names

        # -- capture: subscription filter -> Firehose -> S3 -------------------------------
        self.delivery_logs = defaults.log_group(self, "CaptureDeliveryLogs")
        # Firehose's role, written out: the L2 destination would grant s3:* wildcard actions on the
        # whole bucket; the stack lets this one write (and clean up uploads) under capture/ and capture-errors/.
        self.delivery_role = iam.Role(
            self,
            "CaptureDeliveryRole",
            # Firehose passes the account as the external id (its documented confused-deputy guard).
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com").with_conditions(
                {"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}}
            ),
            description=f"{names.capture_stream}: write capture objects to the artifacts bucket",
        )
        allow(
            self.delivery_role, "DeliveryErrors", ["logs:CreateLogStream", "logs:PutLogEvents"],
            [self.delivery_logs.log_group_arn],
        )  # fmt: skip
        delivery_role = iam.Role.from_role_arn(self, "DeliveryRoleRef", self.delivery_role.role_arn, mutable=False)
        self.stream = firehose.DeliveryStream(
            self,
            "CaptureStream",
            delivery_stream_name=names.capture_stream,
            encryption=firehose.StreamEncryption.aws_owned_key(),
            destination=firehose.S3Bucket(
                bucket,
                data_output_prefix=CAPTURE_PREFIX,  # Firehose appends YYYY/MM/DD/HH/ (UTC)
                error_output_prefix=f"{CAPTURE_ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/",
                buffering_interval=Duration.seconds(monitor.capture_buffer_seconds),
                buffering_size=Size.mebibytes(5),
                processors=[
                    firehose.DecompressionProcessor(),
                    firehose.CloudWatchLogProcessor(data_message_extraction=True),
                    firehose.AppendDelimiterToRecordProcessor(),
                ],
                logging_config=firehose.EnableLogging(self.delivery_logs),
                role=delivery_role,
            ),
            role=delivery_role,
        )
        self.subscription = logs.SubscriptionFilter(
            self,
            "CaptureSubscription",
            log_group=inference_logs,
            destination=log_destinations.FirehoseDestination(self.stream),
            filter_pattern=logs.FilterPattern.literal(CAPTURE_FILTER_PATTERN),
            filter_name=f"{names.prefix}-capture",
        )

        # -- the monitor function ---------------------------------------------------------
        made = python_function(
            self,
            "Monitor",
            defaults=defaults,
            name=names.monitor_function,
            description="Slipway drift monitor: capture window vs the live model's baseline, live quality",
            handler=MONITOR_HANDLER,
            code=defaults.code(MONITOR_PACKAGE),
            memory_mb=monitor.memory_mb,
            timeout_seconds=monitor.timeout_seconds,
            # One cycle at a time: two overlapping runs would write the same report twice.
            reserved_concurrency=1,
            environment=environment,
            role_description=(f"{names.monitor_function}: capture, feedback and manifest reads, report writes, events"),
        )
        self.function, self.role, self.log_group = made.function, made.role, made.log_group

        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            # Only schedules of this account's default group may assume it (EventBridge Scheduler's guard).
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
                {
                    "StringEquals": {
                        "aws:SourceAccount": Aws.ACCOUNT_ID,
                        "aws:SourceArn": (
                            f"arn:{Aws.PARTITION}:scheduler:{Aws.REGION}:{Aws.ACCOUNT_ID}:schedule-group/default"
                        ),
                    }
                }
            ),
            description=f"{names.monitor_schedule}: invoke the monitor function",
        )
        allow(self.schedule_role, "InvokeMonitor", ["lambda:InvokeFunction"], [self.function.function_arn])
        self.schedule = scheduler.Schedule(
            self,
            "MonitorSchedule",
            schedule_name=names.monitor_schedule,
            description="Runs the drift monitor over the last capture window",
            schedule=scheduler.ScheduleExpression.expression(monitor.schedule),
            target=scheduler_targets.LambdaInvoke(
                self.function,
                retry_attempts=2,
                # Imported immutable: the target would add a grant on every version (<arn>:*) to it.
                role=iam.Role.from_role_arn(self, "ScheduleRoleRef", self.schedule_role.role_arn, mutable=False),
            ),
        )

    def add_alarms(self, observability: Observability, *, monitor: MonitorSettings) -> None:
        """The drift, quality and segment-gap alarms and the monitoring widgets."""
        names = self._names

        def metric(name: str, statistic: str = "Maximum", **dimensions: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=names.metrics_namespace,
                metric_name=name,
                dimensions_map={telemetry.SERVICE_DIMENSION: names.monitor_service, **dimensions},
                statistic=statistic,
                period=Duration.hours(1),
            )

        drift = metric(telemetry.DRIFT_DETECTED)
        self.drift_alarm = observability.alarm_when_reached(
            self,
            "DriftDetectedAlarm",
            drift,
            description="The drift monitor found drift in the last capture window (see the HTML report)",
        )
        self.monitor_errors_alarm = observability.alarm_when_reached(
            self,
            "MonitorErrors",
            self.function.metric_errors(period=PERIOD),
            description="The drift monitor failed a run",
        )
        quality = metric(telemetry.MODEL_QUALITY, statistic="Average")
        self.quality_alarms: list[cloudwatch.Alarm] = []
        for construct_id, threshold, operator, words in (
            ("QualityBelow", monitor.quality_alarm_below, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, "below"),
            (
                "QualityAbove",
                monitor.quality_alarm_above,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "above",
            ),
        ):
            if threshold is None:
                continue
            alarm = one_period_alarm(
                self, construct_id, quality, threshold=threshold, comparison=operator,
                description=f"The live model's metric on labelled rows is {words} {threshold}",
            )  # fmt: skip
            self.quality_alarms.append(observability.add_alarm(alarm))
        # The gate metric estimated from the window's calibrated probabilities: it falls before labels arrive.
        estimated = metric(telemetry.ESTIMATED_QUALITY, statistic="Average")
        self.estimated_quality_alarm: cloudwatch.Alarm | None = None
        if monitor.estimated_quality_alarm_below is not None:
            self.estimated_quality_alarm = observability.add_alarm(
                one_period_alarm(
                    self, "EstimatedQualityBelow", estimated, threshold=monitor.estimated_quality_alarm_below,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    description=(
                        f"The live model's metric estimated without labels is below "
                        f"{monitor.estimated_quality_alarm_below} (monitor.estimated_quality_alarm_below; blind to "
                        "concept drift, see the HTML report)"
                    ),
                )
            )  # fmt: skip
        # The widest gap across segments (published only when two segments of a feature have enough rows).
        gap = metric(telemetry.SEGMENT_GAP)
        self.segment_gap_alarm = observability.add_alarm(
            one_period_alarm(
                self, "SegmentGapAlarm", gap, threshold=monitor.segments.gap_alarm,
                description=(
                    f"The model's answers or errors differ across the segments of a feature by over "
                    f"{monitor.segments.gap_alarm:g} (monitor.segments.gap_alarm; see the HTML report)"
                ),
            )
        )  # fmt: skip
        observability.add_widgets(
            cloudwatch.GraphWidget(
                title="Drift share and rows monitored",
                left=[metric(telemetry.DRIFT_SHARE)],
                right=[metric(telemetry.MONITORED_ROWS, statistic="Sum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Live model quality (recipe metric), estimated without labels, and widest gap across segments",
                left=[quality, estimated],
                right=[gap],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="PSI per feature",
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            f"SEARCH('{{{names.metrics_namespace},{telemetry.FEATURE_DIMENSION},"
                            f"{telemetry.SERVICE_DIMENSION}}} MetricName=\"{telemetry.FEATURE_PSI}\"', 'Maximum', 3600)"
                        ),
                        label="PSI",
                        period=Duration.hours(1),
                    )
                ],
                width=8,
            ),
        )
