"""The pipeline access stack (`-c pipeline=true`): GitHub's OIDC provider, the deploy role's trust and its rights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from synth_support import cdk_context, resource_text, resources

from infra.app import FEATURE_FLAGS, build_pipeline_access, wants_pipeline_access
from stage.settings import SettingsError
from tests.assembly import synth as cdk_synth

DEV_ACCOUNT, PROD_ACCOUNT = "111111111111", "222222222222"
CDK_ROLES = ("deploy", "file-publishing", "lookup")
# Every statement of a deploy role, and the actions of each.
DEPLOY_RIGHTS = {
    "AssumeCdkBootstrapRoles": ["sts:AssumeRole"],
    "ReadStackOutputs": ["cloudformation:DescribeStacks"],
    "ReadApiKeys": ["apigateway:GET"],
    "SmokeTestApi": ["execute-api:Invoke"],
    "RegistryBundles": ["s3:GetObject", "s3:PutObject"],
    "RegistryListing": ["s3:ListBucket"],
    "LivePointer": ["ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameterHistory"],
    "LivePointerLock": ["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"],
    "StartPipelines": ["states:StartExecution"],
    "FollowPipelines": ["states:DescribeExecution", "states:GetExecutionHistory"],
}


def synth(stage: str, tmp_path: Path, **stages: dict[str, Any]) -> tuple[Stack, Template, App]:
    """The stage's access stack with cdk.json's settings and `stages` merged over them; cdk-nag run."""
    context = cdk_context()
    for name, overrides in stages.items():
        context["slipway:stages"][name] = {**context["slipway:stages"][name], **overrides}
    app = App(context={**context, "stage": stage, "pipeline": "true"}, post_cli_context=FEATURE_FLAGS,
              outdir=str(tmp_path))  # fmt: skip
    assert wants_pipeline_access(app)
    _, stack = build_pipeline_access(app)
    app.synth()  # fails on any cdk-nag (AwsSolutions) finding not acknowledged
    return stack, Template.from_stack(stack), app


def statements(template: Template, role_name: str) -> dict[str, dict[str, Any]]:
    role_id = next(
        k for k, r in resources(template, "AWS::IAM::Role").items() if r["Properties"]["RoleName"] == role_name
    )
    [policy] = [
        p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    found = policy["Properties"]["PolicyDocument"]["Statement"]
    return {s["Sid"]: s for s in found}


def trust(template: Template, role_name: str) -> list[dict[str, Any]]:
    [role] = [r for r in resources(template, "AWS::IAM::Role").values() if r["Properties"]["RoleName"] == role_name]
    return list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_prod_trusts_only_its_environment_and_reads_dev_through_its_release_reader(tmp_path: Path) -> None:
    _, template, _ = synth(
        "prod", tmp_path,
        dev={"account": DEV_ACCOUNT},
        prod={"account": PROD_ACCOUNT, "pipeline": {"github_repository": "acme/slipway", "environment": "production",
                                                    "release_from": "dev"}},
    )  # fmt: skip

    [provider] = resources(template, "AWS::IAM::OIDCProvider").values()
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    [statement] = trust(template, "slipway-prod-deploy")
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:acme/slipway:environment:production",
        }
    }
    rights = statements(template, "slipway-prod-deploy")
    assert {sid: actions(s) for sid, s in rights.items()} == {
        **DEPLOY_RIGHTS,
        "AssumeReleaseReader": ["sts:AssumeRole"],
    }
    assert resource_text(rights["AssumeReleaseReader"]["Resource"]) == (
        f"arn:<AWS::Partition>:iam::{DEV_ACCOUNT}:role/slipway-dev-release-reader"
    )
    assert [resource_text(r) for r in rights["AssumeCdkBootstrapRoles"]["Resource"]] == [
        f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-hnb659fds-{kind}-role-<AWS::AccountId>-us-east-1"
        for kind in CDK_ROLES
    ]
    bucket = f"arn:<AWS::Partition>:s3:::slipway-prod-artifacts-{PROD_ACCOUNT}-us-east-1"
    assert resource_text(rights["RegistryBundles"]["Resource"]) == f"{bucket}/models/*"
    assert rights["RegistryListing"]["Condition"] == {"StringLike": {"s3:prefix": ["models/*"]}}
    assert resource_text(rights["LivePointer"]["Resource"]) == (
        f"arn:<AWS::Partition>:ssm:us-east-1:{PROD_ACCOUNT}:parameter/slipway/prod/live-model"
    )
    assert "ManagedPolicyArns" not in str(template.to_json())
    assert len(resources(template, "AWS::IAM::Role")) == 1  # nobody releases from prod: no reader


def test_dev_trusts_main_and_lets_only_prods_deploy_role_read_its_releases(tmp_path: Path) -> None:
    _, template, _ = synth(
        "dev", tmp_path,
        dev={"account": DEV_ACCOUNT, "pipeline": {"github_repository": "acme/slipway", "release_to": ["prod"]}},
        prod={"account": PROD_ACCOUNT},
    )  # fmt: skip

    [statement] = trust(template, "slipway-dev-deploy")
    assert statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:acme/slipway:ref:refs/heads/main"
    )
    assert {sid: actions(s) for sid, s in statements(template, "slipway-dev-deploy").items()} == DEPLOY_RIGHTS
    [reader_trust] = trust(template, "slipway-dev-release-reader")
    assert reader_trust["Action"] == "sts:AssumeRole"
    assert (
        resource_text(reader_trust["Principal"]["AWS"])
        == f"arn:<AWS::Partition>:iam::{PROD_ACCOUNT}:role/slipway-prod-deploy"
    )
    reads = statements(template, "slipway-dev-release-reader")
    assert {sid: actions(s) for sid, s in reads.items()} == {
        "ReleaseReadObjects": ["s3:GetObject"],
        "ReleaseReadListing": ["s3:ListBucket"],
        "ReleaseReadPointer": ["ssm:GetParameterHistory"],
    }
    bucket = f"arn:<AWS::Partition>:s3:::slipway-dev-artifacts-{DEV_ACCOUNT}-us-east-1"
    assert [resource_text(r) for r in reads["ReleaseReadObjects"]["Resource"]] == [
        f"{bucket}/models/*", f"{bucket}/retrain/decisions/*", f"{bucket}/rollouts/*"
    ]  # fmt: skip


def test_in_one_account_prod_reads_dev_directly_and_may_reuse_the_provider(tmp_path: Path) -> None:
    _, template, _ = synth(
        "prod", tmp_path,
        prod={"pipeline": {"github_repository": "acme/slipway", "environment": "production", "release_from": "dev",
                           "create_oidc_provider": False}},
    )  # fmt: skip

    assert not resources(template, "AWS::IAM::OIDCProvider")
    [statement] = trust(template, "slipway-prod-deploy")
    assert resource_text(statement["Principal"]["Federated"]) == (
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:oidc-provider/token.actions.githubusercontent.com"
    )
    rights = statements(template, "slipway-prod-deploy")
    assert "AssumeReleaseReader" not in rights
    assert actions(rights["ReleaseSourceObjects"]) == ["s3:GetObject"]
    assert rights["ReleaseSourceListing"]["Condition"] == {
        "StringLike": {"s3:prefix": ["models/*", "retrain/decisions/*", "rollouts/*"]}
    }


def test_the_role_needs_its_repository(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"pipeline\.github_repository is not set for stage 'dev'"):
        synth("dev", tmp_path)


def test_the_cli_synthesizes_the_access_stack_alone_and_cfn_lint_passes(tmp_path: Path) -> None:
    stages = cdk_context()["slipway:stages"]
    stages["prod"]["pipeline"] = {**stages["prod"]["pipeline"], "github_repository": "acme/slipway"}
    result = cdk_synth("prod", tmp_path, "-c", "pipeline=true", "-c", f"slipway:stages={json.dumps(stages)}")
    assert result.returncode == 0, result.stdout + result.stderr

    template = tmp_path / "slipway-prod-pipeline-access.template.json"
    assert sorted(tmp_path.glob("*.template.json")) == [template]
    linted = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--", str(template)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr
