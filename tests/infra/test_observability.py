"""The alarm topic, the five serving alarms and the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from synth_support import cdk_context, only, resources, synth

from functions.core import telemetry
from stage.names import COST_TAG
from stage.settings import StageSettings


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    # The serving alarms this construct owns; other components add theirs through add_alarm.
    alarms = resources(template, "AWS::CloudWatch::Alarm").items()
    return {
        key: alarm["Properties"]
        for key, alarm in alarms
        if key.startswith("Observability") and not key.startswith("ObservabilityFailedInvocations")
    }


def _alarm(template: Template, prefix: str) -> dict[str, Any]:
    [alarm] = [props for key, props in _alarms(template).items() if key.startswith(f"Observability{prefix}")]
    return alarm


def _metric_names(alarm: dict[str, Any]) -> set[str]:
    return {m["MetricStat"]["Metric"]["MetricName"] for m in alarm.get("Metrics", []) if "MetricStat" in m}


def test_topic_is_encrypted_and_tls_only(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    topic = only(template, "AWS::SNS::Topic")["Properties"]
    assert topic["TopicName"] == "slipway-dev-alarms"
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("ObservabilityAlarmTopicKey")
    statements = only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    assert only(template, "AWS::KMS::Key")["Properties"]["EnableKeyRotation"] is True
    assert not resources(template, "AWS::SNS::Subscription")  # no email configured


def test_a_monthly_budget_of_the_stage_s_tagged_resources_tells_the_topic(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in ("dev", "prod"):
        template = templates[stage]
        budget = only(template, "AWS::Budgets::Budget")["Properties"]
        data = budget["Budget"]
        assert data["BudgetLimit"] == {"Amount": settings[stage].alarms.monthly_budget_usd, "Unit": "USD"}
        assert data["CostFilters"] == {"TagKeyValue": [f"user:{COST_TAG}${stage}"]}
        kinds = {n["Notification"]["NotificationType"]: n for n in budget["NotificationsWithSubscribers"]}
        assert set(kinds) == {"ACTUAL", "FORECASTED"}
        for notification in kinds.values():
            [subscriber] = notification["Subscribers"]
            assert subscriber["Address"]["Ref"].startswith("ObservabilityAlarmTopic")
        # Budgets may publish to the encrypted topic, from this account only.
        statements = only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
        [publish] = [s for s in statements if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
        assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        # The tag the budget counts by is on the stage's resources.
        # (but CDK's own bucket-emptying provider, a CloudFormation-level resource that takes no tags)
        functions = resources(template, "AWS::Lambda::Function")
        ours = [f["Properties"] for key, f in functions.items() if not key.startswith("CustomS3AutoDelete")]
        assert len(ours) > 10
        assert all({"Key": COST_TAG, "Value": stage} in f["Tags"] for f in ours)
    assert settings["prod"].alarms.monthly_budget_usd != settings["dev"].alarms.monthly_budget_usd


def test_seven_serving_alarms_with_thresholds_from_settings_notify_the_topic(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in ("dev", "prod"):
        template, thresholds = templates[stage], settings[stage].alarms
        alarms = _alarms(template)
        assert len(alarms) == 7
        topic_id = next(iter(resources(template, "AWS::SNS::Topic")))
        for props in alarms.values():
            assert props["AlarmActions"] == [{"Ref": topic_id}]
            assert props["OKActions"] == [{"Ref": topic_id}]
            assert props["TreatMissingData"] == "notBreaching"
            assert props["ComparisonOperator"] == "GreaterThanThreshold"

        errors = _alarm(template, "Api5xxRate")
        assert errors["Threshold"] == thresholds.error_5xx_rate_percent
        assert _metric_names(errors) == {"5XXError", "Count"}
        assert any(m.get("Expression") == "100 * n / d" for m in errors["Metrics"])

        latency = _alarm(template, "ApiLatencyP99")
        assert latency["Threshold"] == thresholds.p99_latency_ms
        assert latency["MetricName"] == "Latency" and latency["ExtendedStatistic"] == "p99"
        assert latency["Period"] == 300

        throttles = _alarm(template, "FunctionThrottles")
        assert throttles["Threshold"] == thresholds.throttles_per_5min
        assert throttles["MetricName"] == "Throttles" and throttles["Statistic"] == "Sum"
        assert throttles["Namespace"] == "AWS/Lambda"

        last_good = _alarm(template, "LastGoodModelAnswering")
        assert (last_good["MetricName"], last_good["Statistic"], last_good["Threshold"]) == (
            telemetry.LAST_GOOD_ANSWERS,
            "Sum",
            0,
        ), "any row answered by the last good version alarms"
        assert last_good["Dimensions"] == [{"Name": "service", "Value": "slipway-inference"}]

        for prefix, threshold, names in (
            ("FallbackRate", thresholds.fallback_rate_percent, {telemetry.FALLBACKS, telemetry.PREDICTIONS}),
            ("InvalidRequestRate", thresholds.invalid_request_rate_percent,
             {telemetry.INVALID_REQUESTS, telemetry.PREDICT_REQUESTS}),
            ("OutlierRate", thresholds.outlier_rate_percent, {telemetry.OUTLIERS, telemetry.PREDICTIONS}),
        ):  # fmt: skip
            alarm = _alarm(template, prefix)
            assert alarm["Threshold"] == threshold
            assert _metric_names(alarm) == names
            for metric in (m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m):
                assert metric["Namespace"] == f"Slipway/{stage}"
                assert metric["Dimensions"] == [{"Name": "service", "Value": "slipway-inference"}]


def test_dashboard(templates: dict[str, Template]) -> None:
    dashboard = only(templates["prod"], "AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == "slipway-prod-dashboard"
    body = str(dashboard["DashboardBody"])
    for name in (
        telemetry.FALLBACKS,
        telemetry.INVALID_REQUESTS,
        telemetry.OUTLIERS,
        "5XXError",
        "Throttles",
        "Latency",
    ):
        assert name in body


def test_asynchronously_invoked_functions_keep_their_failures_in_a_queue(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    [(queue_id, queue)] = [
        (key, q) for key, q in resources(template, "AWS::SQS::Queue").items() if key.startswith("ObservabilityFailed")
    ]
    assert queue["Properties"]["QueueName"] == "slipway-dev-failed-invocations"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    configs = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    functions = {}
    for config in configs:
        properties = config["Properties"]
        assert properties["MaximumRetryAttempts"] == 2
        assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        functions[properties["FunctionName"]["Ref"]] = properties
    invoked_by_schedules_and_rules = {
        key
        for key, fn in resources(template, "AWS::Lambda::Function").items()
        if fn["Properties"].get("FunctionName") in
        ("slipway-dev-monitor", "slipway-dev-retrain-trigger", "slipway-dev-retrain-rollback")
    }  # fmt: skip
    assert set(functions) == invoked_by_schedules_and_rules and len(functions) == 3
    [alarm] = [
        a["Properties"]
        for key, a in resources(template, "AWS::CloudWatch::Alarm").items()
        if key.startswith("ObservabilityFailedInvocationsAlarm")
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
    assert alarm["AlarmActions"] and alarm["OKActions"]


def test_emulator_overrides_drop_metric_math_and_nothing_else(tmp_path: Path) -> None:
    """`-c emulator=true` changes only the documented settings: here, plain alarms in place of metric math."""
    aws = synth(cdk_context(), "dev", tmp_path / "aws").to_json()["Resources"]
    emulator = synth(cdk_context(emulator="true"), "dev", tmp_path / "emulator").to_json()["Resources"]
    # Same resources but the cost budget (the emulator has no AWS Budgets); only the function version's
    # logical id (a hash of the function's settings) differs.
    aws_types = sorted(r["Type"] for r in aws.values())
    aws_types.remove("AWS::Budgets::Budget")
    assert aws_types == sorted(r["Type"] for r in emulator.values())
    math = [key for key, r in aws.items() if r["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in r["Properties"]]
    assert len(math) == 4, math
    for key in math:
        assert "Metrics" not in emulator[key]["Properties"], key
        assert emulator[key]["Properties"]["Threshold"] == 0, key
    [function] = [
        r for key, r in emulator.items() if key.startswith("ServingFunction") and r["Type"].endswith("Function")
    ]
    assert function["Properties"]["Architectures"] == ["x86_64"]
