"""The artifacts bucket, its access-logs bucket and the live-model pointer."""

from __future__ import annotations

import json

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


def test_every_bucket_denies_plain_http(templates: dict[str, Template]) -> None:
    for template in templates.values():
        policies = resources(template, "AWS::S3::BucketPolicy")
        assert len(policies) == 2
        for policy in policies.values():
            assert any(
                s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
            )


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
