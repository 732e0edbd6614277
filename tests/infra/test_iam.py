"""Least privilege: every Allow statement in every template, against infra/security.py and docs/security.md."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk.assertions import Template
from synth_support import PROJECT_ROOT

from infra.security import (
    UNCONDITIONED_TRUST,
    UNPREFIXED_LISTING,
    WILDCARD_ACTION_RESOURCE_POLICIES,
    WILDCARD_RESOURCE_STATEMENTS,
)

IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
RESOURCE_POLICY_TYPES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: Template) -> list[tuple[str, str, dict[str, Any]]]:
    """(logical id, resource type, statement) of every Allow statement in identity and resource policies."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    resources = template.to_json()["Resources"]
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents: list[dict[str, Any]] = []
        if kind in IDENTITY_POLICY_TYPES:
            documents.append(props["PolicyDocument"])
        elif kind == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in props.get("Policies", []))
        elif kind in RESOURCE_POLICY_TYPES:
            documents.append(props[RESOURCE_POLICY_TYPES[kind]])
        for document in documents:
            for statement in _as_list(document["Statement"]):
                if statement["Effect"] == "Allow":  # Deny statements only take rights away (e.g. TLS-only)
                    found.append((logical_id, kind, statement))
    return found


def _is_wildcard_action(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def test_no_wildcard_action_and_only_documented_wildcard_resources(templates: dict[str, Template]) -> None:
    problems = []
    checked = 0
    for name, template in templates.items():
        for logical_id, kind, statement in _statements(template):
            checked += 1
            actions = [str(a) for a in _as_list(statement.get("Action", []))]
            for action in filter(_is_wildcard_action, actions):
                if (kind, action) not in WILDCARD_ACTION_RESOURCE_POLICIES or kind in IDENTITY_POLICY_TYPES:
                    problems.append(f"{name}/{logical_id}: wildcard action {action}")
            wildcard_resource = "*" in _as_list(statement.get("Resource", []))
            resource_policy = any((kind, a) in WILDCARD_ACTION_RESOURCE_POLICIES for a in actions)
            if wildcard_resource and not resource_policy and frozenset(actions) not in WILDCARD_RESOURCE_STATEMENTS:
                problems.append(f"{name}/{logical_id}: undocumented Resource '*' for {sorted(actions)}")
            assert "NotAction" not in statement and "NotResource" not in statement, f"{name}/{logical_id}"
    assert checked > 10
    assert not problems, "\n".join(problems)


def test_inference_role_has_exactly_the_documented_rights(templates: dict[str, Template]) -> None:
    for template in templates.values():
        policies = [
            (logical_id, statement)
            for logical_id, kind, statement in _statements(template)
            if kind == "AWS::IAM::Policy" and logical_id.startswith("ServingFunctionRole")
        ]
        actions = sorted(a for _, statement in policies for a in _as_list(statement["Action"]))
        assert actions == sorted(
            ["logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "ssm:GetParameter",
             "xray:PutTelemetryRecords", "xray:PutTraceSegments",
             # POST/GET /predict/async: the queue, the job's request and result (infra/async_jobs.py).
             "sqs:SendMessage", "s3:PutObject", "s3:GetObject", "s3:ListBucket",
             # POST /feedback: store labels under feedback/, nothing more: it reads no capture (infra/stack.py).
             "s3:PutObject"]
        )  # fmt: skip
        s3 = next(statement for _, statement in policies if statement.get("Sid") == "ReadModelBundles")
        assert s3["Resource"]["Fn::Join"][1][-1] == "/models/*"
        role = next(iter(template.find_resources("AWS::IAM::Role", {"Properties": {"Description": _any_inference()}})))
        assert "ManagedPolicyArns" not in template.to_json()["Resources"][role]["Properties"]


CONFUSED_DEPUTY_KEYS = ("aws:SourceAccount", "aws:SourceArn", "sts:ExternalId")


def test_every_service_trust_policy_names_its_source_but_the_documented_ones(
    templates: dict[str, Template],
) -> None:
    unconditioned, conditioned = [], 0
    for name, template in templates.items():
        for logical_id, role in template.find_resources("AWS::IAM::Role").items():
            for statement in _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
                services = _as_list(statement["Principal"].get("Service", []))
                keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
                if keys & set(CONFUSED_DEPUTY_KEYS):
                    conditioned += 1
                elif not set(services) <= set(UNCONDITIONED_TRUST):
                    unconditioned.append(f"{name}/{logical_id}: {services}")
    assert conditioned >= 4  # Firehose, the monitor's schedule, the state machines, CloudWatch Logs
    assert not unconditioned, "\n".join(unconditioned)


def test_every_bucket_listing_is_limited_to_prefixes_but_the_documented_ones(
    templates: dict[str, Template],
) -> None:
    unlimited, limited = [], 0
    for name, template in templates.items():
        for logical_id, _kind, statement in _statements(template):
            if "s3:ListBucket" not in _as_list(statement.get("Action", [])):
                continue
            if "s3:prefix" in statement.get("Condition", {}).get("StringLike", {}):
                limited += 1
            elif not any(logical_id.startswith(role) for role in UNPREFIXED_LISTING):
                unlimited.append(f"{name}/{logical_id}")
    assert limited >= 5
    assert not unlimited, "\n".join(unlimited)


def _any_inference() -> Any:
    from aws_cdk.assertions import Match

    return Match.string_like_regexp("inference")


def test_docs_security_mirrors_the_allowlist() -> None:
    doc = (PROJECT_ROOT / "docs" / "security.md").read_text()
    for actions in WILDCARD_RESOURCE_STATEMENTS:
        for action in actions:
            assert action in doc, f"docs/security.md does not list the Resource '*' of {action}"
    for _kind, action in WILDCARD_ACTION_RESOURCE_POLICIES:
        assert re.search(re.escape(f"`{action}`"), doc), f"docs/security.md does not list {action}"
    for service in UNCONDITIONED_TRUST:
        assert f"`{service}`" in doc, f"docs/security.md does not say why {service}'s trust has no condition"
