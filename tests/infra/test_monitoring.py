"""CDK assertions for the capture pipeline, the monitor schedule, its alarms and least-privilege roles."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template
from synth_support import ESTIMATED_QUALITY_ALARM_BELOW

from functions.core.capture import CAPTURE_FILTER_PATTERN
from functions.monitor.config import MonitorPolicy
from stage.settings import StageSettings


def _monitor_policy(template: Template) -> MonitorPolicy:
    """The policy the monitor function receives in its environment, parsed as the function parses it."""
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "functions.monitor.handler.lambda_handler"}}
    ).values()
    return MonitorPolicy.model_validate_json(function["Properties"]["Environment"]["Variables"]["MONITOR_POLICY"])


def _role_statements(template: Template, description_prefix: str) -> list[dict[str, Any]]:
    roles = template.find_resources("AWS::IAM::Role")
    role_ids = [
        rid for rid, r in roles.items() if str(r["Properties"].get("Description", "")).startswith(description_prefix)
    ]
    assert len(role_ids) == 1, role_ids
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_ids[0]} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_capture_lines_are_shipped_by_a_subscription_to_firehose_hourly_partitions(
    templates: dict[str, Template],
) -> None:
    template = templates["dev"]
    assert CAPTURE_FILTER_PATTERN == "{ $.slipway_capture = 2 }"  # the columnar format's version
    template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter",
        {"FilterPattern": CAPTURE_FILTER_PATTERN, "LogGroupName": Match.any_value()},
    )
    stream = template.find_resources("AWS::KinesisFirehose::DeliveryStream")
    (props,) = [s["Properties"] for s in stream.values()]
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"] == "capture/"
    processors = [p["Type"] for p in s3["ProcessingConfiguration"]["Processors"]]
    assert processors == ["Decompression", "CloudWatchLogProcessing", "AppendDelimiterToRecord"]


def test_the_monitor_runs_on_the_schedule_setting(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    templates["dev"].has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": settings["dev"].monitor.schedule,
            "Target": {"Arn": Match.any_value(), "RoleArn": Match.any_value()},
        },
    )
    templates["dev"].has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "functions.monitor.handler.lambda_handler", "ReservedConcurrentExecutions": 1},
    )
    received = _monitor_policy(templates["dev"])
    assert received.drift == settings["dev"].monitor.drift
    assert received.window_hours == settings["dev"].monitor.window_hours


def test_drift_quality_and_monitor_error_alarms_notify_the_topic(templates: dict[str, Template]) -> None:
    alarms = templates["dev"].find_resources("AWS::CloudWatch::Alarm")
    by_metric = {a["Properties"].get("MetricName"): a["Properties"] for a in alarms.values()}
    assert by_metric["DriftDetected"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert by_metric["ModelQuality"]["ComparisonOperator"] == "LessThanThreshold"
    assert by_metric["ModelQuality"]["Threshold"] == 0.8
    for name in ("DriftDetected", "ModelQuality"):
        assert by_metric[name]["AlarmActions"], name
    assert "EstimatedQuality" not in by_metric  # monitor.estimated_quality_alarm_below is off by default
    lake = templates["dev-lake"].find_resources("AWS::CloudWatch::Alarm")
    (estimated,) = [a["Properties"] for a in lake.values() if a["Properties"].get("MetricName") == "EstimatedQuality"]
    assert estimated["Threshold"] == ESTIMATED_QUALITY_ALARM_BELOW and estimated["AlarmActions"]
    assert estimated["ComparisonOperator"] == "LessThanThreshold"


def test_the_monitor_role_reads_and_writes_only_its_prefixes(templates: dict[str, Template]) -> None:
    statements = _role_statements(templates["dev"], "slipway-dev-monitor: capture")
    by_sid = {s.get("Sid"): s for s in statements}
    text = json.dumps(by_sid["ReadCaptureFeedbackModels"]["Resource"])
    assert "/capture/*" in text and "/feedback/*" in text and "/models/*" in text
    assert by_sid["ReadCaptureFeedbackModels"]["Action"] == "s3:GetObject"
    assert (
        "/reports/*" in json.dumps(by_sid["WriteReports"]["Resource"])
        and by_sid["WriteReports"]["Action"] == "s3:PutObject"
    )
    assert by_sid["ListCaptureAndFeedback"]["Condition"] == {"StringLike": {"s3:prefix": ["capture/*", "feedback/*"]}}
    # The series of estimated and realized quality: that one key is read back (and listed, so missing is a 404).
    assert by_sid["ReadQualityHistory"]["Action"] == "s3:GetObject"
    assert "/reports/quality-history.json" in json.dumps(by_sid["ReadQualityHistory"]["Resource"])
    assert by_sid["PutDriftEvents"]["Action"] == "events:PutEvents"
    # The stage's own DriftDetected only: another stage's source or another detail type is refused.
    assert by_sid["PutDriftEvents"]["Condition"] == {
        "StringEquals": {"events:source": "slipway.dev", "events:detail-type": "DriftDetected"}
    }
    for statement in statements:
        assert "*" not in json.dumps(statement["Action"]), statement


def test_the_inference_role_may_store_feedback_but_not_overwrite_capture(templates: dict[str, Template]) -> None:
    statements = _role_statements(templates["dev"], "slipway-dev-inference")
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["StoreFeedback"]["Action"] == "s3:PutObject" and "/feedback/*" in json.dumps(by_sid["StoreFeedback"])
    puts = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert all("/capture/" not in json.dumps(s["Resource"]) for s in puts)


def test_the_segment_gap_alarm_watches_the_widest_gap_and_notifies_the_topic(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    alarms = templates["dev"].find_resources("AWS::CloudWatch::Alarm")
    (gap,) = [a["Properties"] for a in alarms.values() if a["Properties"].get("MetricName") == "SegmentGap"]
    assert gap["Threshold"] == settings["dev"].monitor.segments.gap_alarm == 0.2
    assert gap["ComparisonOperator"] == "GreaterThanThreshold" and gap["TreatMissingData"] == "notBreaching"
    assert gap["Dimensions"] == [{"Name": "service", "Value": "slipway-monitor"}]  # no segment dimension
    assert gap["AlarmActions"] and gap["OKActions"]
    assert _monitor_policy(templates["dev"]).segments == settings["dev"].monitor.segments
