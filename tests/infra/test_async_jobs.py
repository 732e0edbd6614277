"""CDK assertions for the async path and batch scoring: queues, event sources, the Distributed Map, alarm, roles."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template
from synth_support import TOKEN, resources, state_machine_definition

from stage.settings import StageSettings
from stage.workflows.batch import batch_definition

STAGES = ("dev", "prod")


def _by_name(template: Template, kind: str, key: str, name_suffix: str) -> dict[str, Any]:
    [props] = [
        r["Properties"]
        for r in resources(template, kind).values()
        if str(r["Properties"].get(key, "")).endswith(name_suffix)
    ]
    return props


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["FunctionName"]: r["Properties"]
        for r in resources(template, "AWS::Lambda::Function").values()
        if "FunctionName" in r["Properties"]
    }


def _policy_actions(template: Template, role_prefix: str) -> set[str]:
    actions: set[str] = set()
    for key, policy in resources(template, "AWS::IAM::Policy").items():
        if key.startswith(role_prefix):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                value = statement["Action"]
                actions.update(value if isinstance(value, list) else [value])
    return actions


def test_queues_are_encrypted_with_redrive_retention_and_visibility_longer_than_the_worker(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in STAGES:
        template, jobs = templates[stage], settings[stage].async_jobs
        requests = _by_name(template, "AWS::SQS::Queue", "QueueName", "-async-requests")
        dead = _by_name(template, "AWS::SQS::Queue", "QueueName", "-async-dead-letters")
        worker = _functions(template)[f"slipway-{stage}-async-worker"]
        assert requests["SqsManagedSseEnabled"] is True and dead["SqsManagedSseEnabled"] is True
        assert requests["RedrivePolicy"]["maxReceiveCount"] == jobs.max_receive_count
        assert "deadLetterTargetArn" in requests["RedrivePolicy"]
        assert dead["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert requests["VisibilityTimeout"] > worker["Timeout"] == jobs.worker_timeout_seconds
        # TLS only, on both queues (and on the failed-invocations queue of the observability construct).
        policies = [p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::SQS::QueuePolicy").values()]
        assert len(policies) == 3
        assert all(
            any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in p["Statement"])
            for p in policies
        )


def test_event_sources_report_partial_batch_failures(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in STAGES:
        mappings = [m["Properties"] for m in resources(templates[stage], "AWS::Lambda::EventSourceMapping").values()]
        assert len(mappings) == 2
        for mapping in mappings:
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["BatchSize"] == settings[stage].async_jobs.batch_size
        # The worker's queue runs at most this many instances: a flood of jobs leaves /predict its concurrency.
        limits = [m.get("ScalingConfig", {}).get("MaximumConcurrency") for m in mappings]
        assert sorted(limits, key=str) == [5, None], limits


def test_the_batch_state_machine_is_a_distributed_map_over_the_manifest(templates: dict[str, Template]) -> None:
    for stage in STAGES:
        [machine] = resources(templates[stage], "AWS::StepFunctions::StateMachine").values() if False else [
            m for m in resources(templates[stage], "AWS::StepFunctions::StateMachine").values()
            if m["Properties"].get("StateMachineName") == f"slipway-{stage}-batch-scoring"
        ]  # fmt: skip
        body = json.dumps(machine["Properties"]["DefinitionString"])
        for needle in ('\\"Mode\\":\\"DISTRIBUTED\\"', "arn:aws:states:::s3:getObject", "arn:aws:states:::s3:putObject",
                       '\\"InputType\\":\\"JSON\\"', "batch/_runs/results"):  # fmt: skip
            assert needle in body.replace(" ", ""), needle
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
        assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_the_dead_letter_depth_alarm_notifies_the_topic(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in STAGES:
        alarms = [
            a["Properties"]
            for k, a in resources(templates[stage], "AWS::CloudWatch::Alarm").items()
            if "DeadLetterDepth" in k
        ]
        assert len(alarms) == 1
        alarm = alarms[0]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == settings[stage].async_jobs.dead_letter_alarm_threshold
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] and alarm["OKActions"]


def test_a_poison_dead_letter_set_aside_by_the_fallback_alarms(templates: dict[str, Template]) -> None:
    for stage in STAGES:
        [alarm] = [
            a["Properties"]
            for k, a in resources(templates[stage], "AWS::CloudWatch::Alarm").items()
            if "PoisonDeadLetters" in k
        ]
        assert alarm["MetricName"] == "AsyncPoisonMessages" and alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == 1 and alarm["AlarmActions"] and "poison dead letter" in alarm["AlarmDescription"]


def test_roles_hold_only_what_each_function_needs(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    base = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    worker_queue = {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes"}  # fmt: skip
    s3 = {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    assert _policy_actions(template, "AsyncJobsWorkerRole") == base | worker_queue | s3 | {"ssm:GetParameter"}
    assert _policy_actions(template, "AsyncJobsFallbackRole") == base | worker_queue | s3 | {"ssm:GetParameter"}
    assert _policy_actions(template, "AsyncJobsBatchPlanRole") == base | {"s3:PutObject", "s3:ListBucket"}
    assert _policy_actions(template, "AsyncJobsBatchScoreRole") == base | {
        "s3:GetObject",
        "s3:PutObject",
        "ssm:GetParameter",
    }
    machine = _policy_actions(template, "AsyncJobsBatchStateMachineRole")
    assert {"lambda:InvokeFunction", "states:StartExecution", "states:DescribeExecution", "s3:GetObject"} <= machine
    assert not any(action.endswith("*") for action in machine)


def test_async_requests_and_results_expire(templates: dict[str, Template], settings: dict[str, StageSettings]) -> None:
    for stage in STAGES:
        rules = [
            rule
            for bucket in resources(templates[stage], "AWS::S3::Bucket").values()
            for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
            if rule.get("Prefix") == "async/"
        ]
        assert [rule["ExpirationInDays"] for rule in rules] == [settings[stage].async_jobs.result_retention_days]


def test_the_deployed_batch_definition_is_the_one_the_local_stack_runs(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in STAGES:
        local = batch_definition(
            plan_function=TOKEN,
            score_function=TOKEN,
            bucket=TOKEN,
            max_concurrency=settings[stage].batch.max_concurrency,
        )
        deployed = state_machine_definition(templates[stage], f"slipway-{stage}-batch-scoring")
        assert deployed == json.loads(json.dumps(local)), stage
