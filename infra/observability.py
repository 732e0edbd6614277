"""Alarms, the alarm topic and the dashboard; other components add theirs through `add_alarm`."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from functions.core import telemetry
from infra.nag import acknowledge
from infra.queues import private_queue
from stage.names import COST_TAG, ResourceNames
from stage.settings import AlarmSettings

PERIOD = Duration.minutes(5)


# Lambda's own retries of an asynchronous invocation before the event goes to the failure queue.
RETRY_ATTEMPTS = 2


@dataclass(frozen=True)
class FrontDoorMetrics:
    """What the serving alarms and the dashboard watch of the front door, whichever its type (api.type)."""

    label: str  # how alarms and widgets name it: "API" or "Function URL"
    requests: cloudwatch.Metric
    server_errors: cloudwatch.Metric
    client_errors: cloudwatch.Metric
    latency_p99: cloudwatch.Metric
    latency_label: str  # "API p99 latency": what latency_p99 is, in alarm descriptions and widget titles
    # Without API Gateway, nothing turns the function's own failures into a 5XX count of its own: alarm on them too.
    function_errors: cloudwatch.Metric | None = None
    function_invocations: cloudwatch.Metric | None = None


def one_period_alarm(
    scope: Construct,
    construct_id: str,
    metric: cloudwatch.IMetric,
    *,
    description: str,
    threshold: float,
    comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
) -> cloudwatch.Alarm:
    """An alarm (in `scope`) when `metric` crosses `threshold` in one period; a period without data is no breach."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=comparison,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


class Observability(Construct):
    """SNS alarm topic, the serving alarms and the stage's dashboard.

    Later components call `add_alarm(alarm, *widgets)` (the alarm notifies the topic and
    gets a widget) or `add_widgets(*widgets)`; nothing here needs rewriting.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        alarms: AlarmSettings,
        front_door: FrontDoorMetrics,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.names = names
        self._metric_math = alarms.metric_math
        # A customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with the
        # AWS-managed aws/sns key, whose policy does not let the CloudWatch service use it.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the {names.alarm_topic} SNS topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=names.alarm_topic,
            display_name=f"Slipway {names.stage} alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        if alarms.monthly_budget_usd > 0:
            self._budget(alarms.monthly_budget_usd)
        if alarms.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(str(alarms.email)))
        self._action = cw_actions.SnsAction(self.topic)

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=names.dashboard, default_interval=Duration.hours(3)
        )
        self.alarms: list[cloudwatch.Alarm] = []
        self._serving_alarms(alarms=alarms, front_door=front_door, function=function)
        self._failed_invocations(names)

    def _budget(self, limit_usd: float) -> None:
        """A monthly cost budget over the stage's tagged resources, told to the alarm topic."""
        source = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:budgets::{Aws.ACCOUNT_ID}:*"},
        }
        budgets_service = iam.ServicePrincipal("budgets.amazonaws.com")
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowBudgetsToUseKey", principals=[budgets_service],
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=["*"], conditions=source,
            )
        )  # fmt: skip
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowBudgetsToPublish", principals=[budgets_service],
                actions=["sns:Publish"], resources=[self.topic.topic_arn], conditions=source,
            )
        )  # fmt: skip
        notify = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)]
        budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.names.budget,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=limit_usd, unit="USD"),
                cost_filters={"TagKeyValue": [f"user:{COST_TAG}${self.names.stage}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=notify,
                )
                for kind, percent in (("ACTUAL", 80), ("FORECASTED", 100))
            ],
        )  # fmt: skip

    # -- the interface other components use ------------------------------------------

    def add_alarm(self, alarm: cloudwatch.Alarm, *widgets: cloudwatch.IWidget) -> cloudwatch.Alarm:
        """Send `alarm` (and its return to OK) to the topic and show it on the dashboard."""
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        self.dashboard.add_widgets(*(widgets or (cloudwatch.AlarmWidget(alarm=alarm, title=alarm.node.id, width=8),)))
        return alarm

    def alarm_when_reached(
        self,
        scope: Construct,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        threshold: float = 1,
    ) -> cloudwatch.Alarm:
        """An alarm (in `scope`) when `metric` reaches `threshold` in one period, added like add_alarm."""
        return self.add_alarm(
            one_period_alarm(
                scope, construct_id, metric, description=description, threshold=threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            )
        )  # fmt: skip

    def add_widgets(self, *widgets: cloudwatch.IWidget) -> None:
        """Add a row of widgets to the dashboard."""
        self.dashboard.add_widgets(*widgets)

    def on_failure(self, function: lambda_.IFunction) -> None:
        """Keep the events an asynchronously invoked function fails on (after Lambda's retries) in a queue."""
        function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failed_invocations), retry_attempts=RETRY_ATTEMPTS
        )

    def _failed_invocations(self, names: ResourceNames) -> None:
        """The queue that keeps the events of failed asynchronous invocations, and its alarm."""
        self.failed_invocations = private_queue(
            self, "FailedInvocations", names.failed_invocations_queue, retention=Duration.days(14)
        )
        acknowledge(
            self.failed_invocations,
            "AwsSolutions-SQS3",
            "This queue is itself the failure destination of the asynchronously invoked functions (monitor, "
            "retrain trigger, rollback watcher); its depth alarm notifies, and a message stays 14 days.",
        )
        self.alarm_when_reached(
            self,
            "FailedInvocationsAlarm",
            self.failed_invocations.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            description="A scheduled or event-driven function failed after its retries (see the queue)",
        )

    def emf_metric(self, metric_name: str, *, statistic: str = "Sum") -> cloudwatch.Metric:
        """A metric the functions publish as EMF in the stage namespace with the `service` dimension."""
        return cloudwatch.Metric(
            namespace=self.names.metrics_namespace,
            metric_name=metric_name,
            dimensions_map={telemetry.SERVICE_DIMENSION: self.names.inference_service},
            statistic=statistic,
            period=PERIOD,
        )

    # -- the serving alarms ------------------------------------------------------------

    def _rate_alarm(
        self, construct_id: str, *, numerator: cloudwatch.Metric, denominator: cloudwatch.IMetric,
        threshold: float, label: str, description: str,
    ) -> cloudwatch.Alarm:  # fmt: skip
        if not self._metric_math:
            # The emulator's stand-in: the same alarm fires on any count of the numerator.
            return one_period_alarm(
                self, construct_id, numerator,
                description=f"{description} (emulator: any occurrence, no metric math)", threshold=0,
            )  # fmt: skip
        rate = cloudwatch.MathExpression(
            expression="100 * n / d",
            using_metrics={"n": numerator, "d": denominator},
            period=PERIOD,
            label=label,
        )
        return one_period_alarm(self, construct_id, rate, description=description, threshold=threshold)

    def _serving_alarms(
        self, *, alarms: AlarmSettings, front_door: FrontDoorMetrics, function: lambda_.IFunction
    ) -> None:
        door = front_door.label
        server_errors, requests, latency_p99 = front_door.server_errors, front_door.requests, front_door.latency_p99
        throttles = function.metric_throttles(statistic="Sum", period=PERIOD)
        predictions = self.emf_metric(telemetry.PREDICTIONS)
        fallbacks = self.emf_metric(telemetry.FALLBACKS)
        predict_requests = self.emf_metric(telemetry.PREDICT_REQUESTS)
        invalid_requests = self.emf_metric(telemetry.INVALID_REQUESTS)
        last_good = self.emf_metric(telemetry.LAST_GOOD_ANSWERS)
        outliers = self.emf_metric(telemetry.OUTLIERS)

        self.api_5xx_alarm = self._rate_alarm(
            "Api5xxRate", numerator=server_errors, denominator=requests,
            threshold=alarms.error_5xx_rate_percent, label="5XX rate (%)",
            description=f"{door} 5XX responses above {alarms.error_5xx_rate_percent}% of requests over 5 minutes",
        )  # fmt: skip
        self.latency_alarm = one_period_alarm(
            self, "ApiLatencyP99", latency_p99, threshold=alarms.p99_latency_ms,
            description=f"{front_door.latency_label} above {alarms.p99_latency_ms} ms over 5 minutes",
        )  # fmt: skip
        door_alarms: tuple[cloudwatch.Alarm, ...] = ()
        if front_door.function_errors is not None and front_door.function_invocations is not None:
            self.function_errors_alarm = self._rate_alarm(
                "FunctionErrorRate", numerator=front_door.function_errors,
                denominator=front_door.function_invocations,
                threshold=alarms.error_5xx_rate_percent, label="Function error rate (%)",
                description=f"Inference function errors above {alarms.error_5xx_rate_percent}% of invocations over "
                "5 minutes",
            )  # fmt: skip
            door_alarms = (self.function_errors_alarm,)
        self.throttles_alarm = one_period_alarm(
            self, "FunctionThrottles", throttles, threshold=alarms.throttles_per_5min,
            description=f"Inference function throttled more than {alarms.throttles_per_5min} times in 5 minutes",
        )  # fmt: skip
        self.fallback_alarm = self._rate_alarm(
            "FallbackRate", numerator=fallbacks, denominator=predictions,
            threshold=alarms.fallback_rate_percent, label="Fallback rate (%)",
            description=f"Rows answered by the fallback above {alarms.fallback_rate_percent}% over 5 minutes",
        )  # fmt: skip
        # Traffic unlike the training data, not a failing model: it alarms, and never rolls a version back.
        self.outlier_alarm = self._rate_alarm(
            "OutlierRate", numerator=outliers, denominator=predictions,
            threshold=alarms.outlier_rate_percent, label="Outlier rate (%)",
            description=f"Rows flagged as outliers above {alarms.outlier_rate_percent}% over 5 minutes",
        )  # fmt: skip
        self.invalid_request_alarm = self._rate_alarm(
            "InvalidRequestRate", numerator=invalid_requests, denominator=predict_requests,
            threshold=alarms.invalid_request_rate_percent, label="Invalid request rate (%)",
            description=f"Invalid /predict requests above {alarms.invalid_request_rate_percent}% over 5 minutes",
        )  # fmt: skip

        self.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{door} requests, 4XX and 5XX", left=[requests, front_door.client_errors, server_errors], width=8
            ),
            cloudwatch.GraphWidget(title=f"{front_door.latency_label} (ms)", left=[latency_p99], width=8),
            cloudwatch.GraphWidget(
                title="Inference function",
                left=[function.metric_invocations(period=PERIOD), function.metric_errors(period=PERIOD), throttles],
                width=8,
            ),
        )
        self.add_widgets(
            cloudwatch.GraphWidget(
                title="Predictions, fallbacks, last-good answers and outliers (rows)",
                left=[predictions, fallbacks, last_good, outliers],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="/predict requests and invalid ones", left=[predict_requests, invalid_requests], width=8
            ),
            cloudwatch.GraphWidget(
                title="Scoring latency in the handler (ms)",
                left=[self.emf_metric(telemetry.SCORING_LATENCY, statistic="p99")],
                width=8,
            ),
        )
        # Any row answered by the last good version: the registry's live version cannot be loaded.
        self.last_good_alarm = one_period_alarm(
            self, "LastGoodModelAnswering", last_good, threshold=0,
            description="The live model version cannot be loaded; the last good version answers (see /health)",
        )  # fmt: skip
        api_alarms = (self.api_5xx_alarm, self.latency_alarm, self.throttles_alarm, *door_alarms)
        model_alarms = (self.fallback_alarm, self.invalid_request_alarm, self.last_good_alarm, self.outlier_alarm)
        for alarm in (*api_alarms, *model_alarms):
            alarm.add_alarm_action(self._action)
            alarm.add_ok_action(self._action)
            self.alarms.append(alarm)
        self.add_widgets(
            cloudwatch.AlarmStatusWidget(alarms=list(self.alarms), title="Alarms", width=24),
        )
