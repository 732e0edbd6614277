"""The artifacts bucket, its access-logs bucket and the live-model pointer."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template
from synth_support import resources


def _artifacts_bucket(template: Template) -> dict:
    buckets = resources(template, "AWS::S3::Bucket")
    return next(b for key, b in buckets.items() if key.startswith("StorageArtifactsBucket"))


def test_artifacts_bucket_is_versioned_encrypted_private_and_logged(templates: dict[str, Template]) -> None:
    for template in templates.values():
        props = _artifacts_bucket(template)["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"
        }
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }  # fmt: skip
        assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("StorageAccessLogsBucket")


def test_lifecycle_expires_capture_reports_and_noncurrent_versions(templates: dict[str, Template]) -> None:
    rules = {r["Id"]: r for r in _artifacts_bucket(templates["dev"])["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-capture"]["Prefix"] == "capture/" and rules["expire-capture"]["ExpirationInDays"] == 90
    assert rules["expire-reports"]["Prefix"] == "reports/" and rules["expire-reports"]["ExpirationInDays"] == 365
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # Nothing under these prefixes is kept forever either.
    expiry = {rule["Prefix"]: rule.get("ExpirationInDays") for rule in rules.values() if "Prefix" in rule}
    assert expiry == {"capture/": 90, "reports/": 365, "feedback/": 400, "retrain/runs/": 400,
                      "capture-errors/": 30, "async/": 7, "batch/": 90}  # fmt: skip


def test_every_bucket_denies_plain_http(templates: dict[str, Template]) -> None:
    for template in templates.values():
        policies = resources(template, "AWS::S3::BucketPolicy")
        assert len(policies) == 2
        for policy in policies.values():
            assert any(
                s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
            )


def _artifacts_statements(template: Template) -> dict[str, dict[str, Any]]:
    [policy] = [
        p for p in resources(template, "AWS::S3::BucketPolicy").values()
        if "ArtifactsBucket" in json.dumps(p["Properties"]["Bucket"])
    ]  # fmt: skip
    return {s.get("Sid", ""): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_bundles_are_written_once_and_kept_where_data_is_retained(templates: dict[str, Template]) -> None:
    for stage, template in templates.items():
        statements = _artifacts_statements(template)
        once = statements["WriteBundlesOnce"]
        # Every write under models/ must be conditional (If-None-Match), so no one overwrites a version.
        assert (once["Effect"], once["Principal"], once["Action"]) == ("Deny", {"AWS": "*"}, "s3:PutObject"), once
        assert once["Condition"] == {"Null": {"s3:if-none-match": "true"}}
        assert "/models/*" in json.dumps(once["Resource"])
        keep = statements.get("KeepBundles")
        if stage.startswith("prod"):
            assert keep is not None and keep["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"], keep
            assert "role/slipway-prod-break-glass" in json.dumps(keep["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
        elif stage == "dev":
            assert keep is None  # dev is destroyed with its objects (auto-delete)


def test_retention_follows_storage_retain_data(templates: dict[str, Template]) -> None:
    # dev: retain_data false -> destroyed with auto-delete; prod: retained, no auto-delete resources.
    assert _artifacts_bucket(templates["dev"])["DeletionPolicy"] == "Delete"
    assert resources(templates["dev"], "Custom::S3AutoDeleteObjects")
    assert _artifacts_bucket(templates["prod"])["DeletionPolicy"] == "Retain"
    assert not resources(templates["prod"], "Custom::S3AutoDeleteObjects")


def test_live_pointer_parameter_starts_empty(templates: dict[str, Template]) -> None:
    templates["dev"].has_resource_properties(
        "AWS::SSM::Parameter",
        {
            "Name": "/slipway/dev/live-model",
            "Type": "String",
            "Tier": "Standard",
            "Value": json.dumps({"version": None}),
        },
    )
    templates["prod"].has_resource_properties("AWS::SSM::Parameter", {"Name": "/slipway/prod/live-model"})
    templates["dev"].has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": {
                "Fn::Join": ["", ["slipway-dev-artifacts-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]
            }
        },
    )
    assert Match  # imported for readers extending these checks
