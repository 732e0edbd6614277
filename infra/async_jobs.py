"""Async predictions and batch scoring: the queues, the worker, the dead-letter fallback, the batch state machine.

All four functions run the inference package (same code as /predict). Every
role starts with its own logs and traces only; the grants below name the
exact prefixes, queue and parameter each one needs.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.core import layout, telemetry
from infra.bundling import INFERENCE_PACKAGE
from infra.grants import allow
from infra.lambda_function import FunctionDefaults, python_function
from infra.nag import acknowledge
from infra.observability import Observability
from infra.queues import private_queue
from infra.state_machines import state_machine
from stage.names import ResourceNames
from stage.settings import StageSettings
from stage.workflows.batch import batch_definition


class AsyncJobs(Construct):
    """Requests queue -> worker; dead-letter queue -> fallback; batch scoring state machine; DLQ-depth alarm.

    Its functions' access to the bucket and the pointer is granted by the stack (infra.stack).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        settings: StageSettings,
        bucket: s3.IBucket,
        environment: dict[str, str],
        observability: Observability,
        defaults: FunctionDefaults,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names, self._settings, self._bucket = names, settings, bucket
        self._environment = environment
        self._defaults = defaults
        self._code = defaults.code(INFERENCE_PACKAGE)
        jobs = settings.async_jobs
        self.dead_letter_queue = private_queue(
            self,
            "DeadLetterQueue",
            names.dead_letter_queue,
            retention=Duration.seconds(settings.async_jobs.dead_letter_retention_seconds),
            visibility_timeout=Duration.seconds(6 * 60),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the async requests queue; a message its fallback cannot "
            "handle stays here for 14 days and the DLQ-depth alarm fires.",
        )
        self.requests_queue = private_queue(
            self,
            "RequestsQueue",
            names.requests_queue,
            visibility_timeout=Duration.seconds(settings.async_jobs.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=jobs.max_receive_count
            ),
        )

        if isinstance(bucket, s3.Bucket):
            bucket.add_lifecycle_rule(
                id="ExpireAsyncJobs", prefix=layout.ASYNC_PREFIX, expiration=Duration.days(jobs.result_retention_days)
            )
        self.worker = self._function(
            "Worker", names.async_worker_function, "functions.inference.async_worker.lambda_handler",
            "Slipway async worker: scores queued jobs with the live model",
            memory_mb=jobs.worker_memory_mb, timeout_seconds=jobs.worker_timeout_seconds,
        )  # fmt: skip
        self.worker.add_event_source(
            sources.SqsEventSource(
                self.requests_queue,
                batch_size=jobs.batch_size,
                max_batching_window=Duration.seconds(jobs.max_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=jobs.worker_max_concurrency,
            )
        )

        self.fallback = self._function(
            "Fallback", names.async_fallback_function, "functions.inference.async_fallback.lambda_handler",
            "Slipway async fallback: answers dead-lettered jobs with the declared plan B",
            memory_mb=512, timeout_seconds=60,
        )  # fmt: skip
        self.fallback.add_event_source(
            sources.SqsEventSource(self.dead_letter_queue, batch_size=jobs.batch_size, report_batch_item_failures=True)
        )

        self.dead_letter_alarm = observability.alarm_when_reached(
            self,
            "DeadLetterDepth",
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=Duration.minutes(5)
            ),
            description=(
                f"{names.dead_letter_queue} holds {jobs.dead_letter_alarm_threshold}+ message(s) the fallback "
                "has not answered: inspect, fix, then `slipway redrive`"
            ),
            threshold=jobs.dead_letter_alarm_threshold,
        )
        self.poison_alarm = observability.alarm_when_reached(
            self,
            "PoisonDeadLetters",
            observability.emf_metric(telemetry.ASYNC_POISON_MESSAGES),
            description=(
                f"The fallback set aside dead letters of {names.dead_letter_queue} that name no job: each body is "
                f"kept under {layout.ASYNC_POISON_PREFIX} and its message id logged ('poison dead letter set aside'), "
                "then the message is deleted"
            ),
        )
        observability.add_widgets(
            cloudwatch.GraphWidget(
                title="Async queues (messages)",
                left=[
                    self.requests_queue.metric_approximate_number_of_messages_visible(),
                    self.dead_letter_queue.metric_approximate_number_of_messages_visible(),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Async worker and fallback",
                left=[self.worker.metric_errors(), self.fallback.metric_invocations(), self.fallback.metric_errors()],
                width=12,
            ),
        )
        self._batch()

    # -- batch scoring --------------------------------------------------------------------

    def _batch(self) -> None:
        names, settings = self._names, self._settings
        self.batch_plan = self._function(
            "BatchPlan", names.batch_plan_function, "functions.inference.batch_handler.plan_handler",
            "Slipway batch scoring: lists the new or changed objects of a prefix into a manifest",
            memory_mb=512, timeout_seconds=300,
        )  # fmt: skip
        self.batch_score = self._function(
            "BatchScore", names.batch_score_function, "functions.inference.batch_handler.score_handler",
            "Slipway batch scoring: scores one CSV object with the live model",
            memory_mb=settings.batch.scoring_memory_mb, timeout_seconds=settings.batch.scoring_timeout_seconds,
        )  # fmt: skip

        stack = Stack.of(self)
        definition = batch_definition(
            plan_function=self.batch_plan.function_arn,
            score_function=self.batch_score.function_arn,
            bucket=self._bucket.bucket_name,
            max_concurrency=settings.batch.max_concurrency,
        )
        self.batch_state_machine = state_machine(
            self,
            "BatchStateMachine",
            name=names.batch_state_machine,
            definition=definition,
            timeout=Duration.hours(24),
            defaults=self._defaults,
            invokes=("InvokeBatchSteps", [self.batch_plan.function_arn, self.batch_score.function_arn]),
            include_execution_data=False,
        )
        machine = self.batch_state_machine
        # A Distributed Map runs each item as a child execution of this state machine.
        own_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=names.batch_state_machine,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{names.batch_state_machine}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(machine.role, "RunChildExecutions", ["states:StartExecution"], [own_arn])
        allow(machine.role, "ManageChildExecutions", ["states:DescribeExecution", "states:StopExecution"], [executions])
        acknowledge(
            machine.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:{stack.region}:<AWS::AccountId>:execution:"
            f"{names.batch_state_machine}/*]",
            "This state machine's own executions only: a Distributed Map runs each item as a child execution "
            "whose id is made at run time.",
        )

    # -- helpers --------------------------------------------------------------------------

    def _function(
        self, construct_id: str, name: str, handler: str, description: str, *, memory_mb: int, timeout_seconds: int
    ) -> lambda_.Function:
        return python_function(
            self,
            construct_id,
            defaults=self._defaults,
            name=name,
            description=description,
            handler=handler,
            code=self._code,
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            environment=self._environment,
            role_description=f"{name}: its logs and traces, and the grants listed in infra/async_jobs.py",
        ).function
