"""The pipeline's way into a stage's account: GitHub's OIDC provider and the stage's deploy role.

`cdk deploy -c stage=<stage> -c pipeline=true` deploys it, once per stage, apart from the stage's own
stack. The deploy role trusts only GitHub's tokens for one repository and one branch or environment; it
may assume the account's `cdk bootstrap` roles (which do the deploying), and do what the workflows'
commands need: read the stack's outputs and call the API (`slipway smoke`), move the stage's registry
(`slipway models`, `retrain`, `release`, `rollback`) and read the stage it releases from. A stage that
another account releases from gets a release reader role, read-only, assumable by that stage's deploy role.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.core import layout
from functions.core.registry import POINTER_LOCK_SUFFIX
from infra.grants import GET, LIST, PUT, allow
from infra.nag import acknowledge
from stage.names import ResourceNames
from stage.settings import SettingsError, StageSettings

GITHUB_ISSUER = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
# What `cdk deploy` assumes: the bootstrap stack's roles (`cdk bootstrap`, cdk-<qualifier>-<kind>-<account>-<region>).
CDK_ROLE_KINDS = ("deploy", "file-publishing", "lookup")
# What a release reads of the stage it comes from (functions.adapters.release_store, the pointer's history).
RELEASE_READ_PREFIXES = (layout.MODELS_PREFIX, layout.GATE_DECISIONS_PREFIX, layout.ROLLOUT_PREFIX)
# Why each statement with a wildcard needs it (cdk-nag's acknowledgement), by statement id.
_WILDCARDS = {
    "ReadStackOutputs": "a stack's ARN ends in the id CloudFormation gives it; the name is exact.",
    "ReadApiKeys": "the smoke test reads the stage's API key, whose id API Gateway makes at deploy time.",
    "SmokeTestApi": "the API's id is made at deploy time; only the routes the smoke test calls are named.",
    "RegistryBundles": "model versions under models/ are content hashes made at run time.",
    "FollowPipelines": "execution names of the stage's own state machines are made at run time.",
    "ReleaseObjects": "model versions, gate decisions and rollout runs under the released stage's prefixes are made at "
    "run time; read-only.",
}
# The routes `slipway smoke` calls.
SMOKE_ROUTES = ("GET/health", "GET/model", "POST/predict")


def github_subject(settings: StageSettings) -> str:
    """The `sub` claim of the GitHub jobs the stage's deploy role trusts: its environment's, else its branch's."""
    pipeline = settings.pipeline
    if pipeline.github_repository is None:
        raise SettingsError(
            f"pipeline.github_repository is not set for stage {settings.stage!r}: name the repository (owner/name) "
            "whose workflows may deploy it in cdk.json"
        )
    if pipeline.environment is not None:
        return f"repo:{pipeline.github_repository}:environment:{pipeline.environment}"
    return f"repo:{pipeline.github_repository}:ref:refs/heads/{pipeline.branch}"


class PipelineAccessStack(Stack):
    """GitHub's OIDC provider (optional), the stage's deploy role and, when asked, its release reader role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        names: ResourceNames,
        source: tuple[StageSettings, ResourceNames] | None,
        release_to: list[tuple[StageSettings, ResourceNames]],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._names = names
        if settings.pipeline.create_oidc_provider:
            provider_arn = iam.OidcProviderNative(
                self, "GitHubOidc", url=f"https://{GITHUB_ISSUER}", client_ids=[STS_AUDIENCE]
            ).oidc_provider_arn
        else:
            provider_arn = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:oidc-provider/{GITHUB_ISSUER}"
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            role_name=names.deploy_role,
            description=f"Slipway {settings.stage}: what the GitHub workflow of {settings.pipeline.github_repository} "
            "may do (docs/pipeline.md)",
            max_session_duration=Duration.hours(2),
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_ISSUER}:aud": STS_AUDIENCE,
                        f"{GITHUB_ISSUER}:sub": github_subject(settings),
                    }
                },
            ),
        )
        role = self.deploy_role
        qualifier = settings.pipeline.cdk_qualifier
        self._allow(
            role,
            "AssumeCdkBootstrapRoles",
            ["sts:AssumeRole"],
            [
                self._arn("iam", "", f"role/cdk-{qualifier}-{kind}-role-{Aws.ACCOUNT_ID}-{settings.region}")
                for kind in CDK_ROLE_KINDS
            ],
        )
        self._allow(
            role,
            "ReadStackOutputs",
            ["cloudformation:DescribeStacks"],
            [self._arn("cloudformation", settings.region, f"stack/{names.stack}/*")],
        )
        self._allow(
            role, "ReadApiKeys", ["apigateway:GET"], [f"arn:{Aws.PARTITION}:apigateway:{settings.region}::/apikeys/*"]
        )
        self._allow(
            role,
            "SmokeTestApi",
            ["execute-api:Invoke"],
            [self._arn("execute-api", settings.region, f"*/*/{route}") for route in SMOKE_ROUTES],
        )
        self._grant_registry(role, names)
        self._grant_state_machines(role, names)
        if source is not None:
            self._grant_source(role, *source, same_account=source[1].account == names.account)
        others = [(s, n) for s, n in release_to if n.account != names.account]
        if others:
            self.release_reader = iam.Role(
                self,
                "ReleaseReaderRole",
                role_name=names.release_reader_role,
                description=f"Slipway {settings.stage}: read-only access of the stages that release its models",
                assumed_by=iam.CompositePrincipal(
                    *[iam.ArnPrincipal(f"arn:{Aws.PARTITION}:iam::{n.account}:role/{n.deploy_role}") for _, n in others]
                ),
            )
            self._grant_release_reads(self.release_reader, names, "ReleaseRead")

    def _allow(
        self,
        role: iam.IRole,
        sid: str,
        actions: list[str],
        resources: list[str],
        conditions: dict[str, Any] | None = None,
    ) -> None:
        """One statement of `role`'s policy; each wildcard in it acknowledged by its exact cdk-nag finding."""
        allow(role, sid, actions, resources, conditions)
        for resource in resources:
            if "*" in resource:
                shown = resource.replace(Aws.PARTITION, "<AWS::Partition>").replace(Aws.ACCOUNT_ID, "<AWS::AccountId>")
                why = _WILDCARDS["ReleaseObjects" if sid.endswith("Objects") else sid]
                acknowledge(role, f"AwsSolutions-IAM5[Resource::{shown}]", why)

    def _arn(self, service: str, region: str, resource: str, account: str | None = None) -> str:
        return f"arn:{Aws.PARTITION}:{service}:{region}:{account or Aws.ACCOUNT_ID}:{resource}"

    def _bucket(self, names: ResourceNames) -> str:
        return f"arn:{Aws.PARTITION}:s3:::{names.artifacts_bucket}"

    def _parameter(self, names: ResourceNames, suffix: str = "") -> str:
        return self._arn("ssm", names.region, f"parameter{names.live_pointer_parameter}{suffix}", names.account)

    def _grant_registry(self, role: iam.IRole, names: ResourceNames) -> None:
        """The stage's own registry: bundles under models/ and the live pointer with its lock."""
        self._allow(role, "RegistryBundles", [GET, PUT], [f"{self._bucket(names)}/{layout.MODELS_PREFIX}*"])
        self._allow(
            role,
            "RegistryListing",
            [LIST],
            [self._bucket(names)],
            {"StringLike": {"s3:prefix": [f"{layout.MODELS_PREFIX}*"]}},
        )
        self._allow(
            role,
            "LivePointer",
            ["ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameterHistory"],
            [self._parameter(names)],
        )
        self._allow(
            role,
            "LivePointerLock",
            ["ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"],
            [self._parameter(names, POINTER_LOCK_SUFFIX)],
        )

    def _grant_state_machines(self, role: iam.IRole, names: ResourceNames) -> None:
        """`slipway retrain` starts and follows the retrain pipeline; a release starts a rollout."""
        machines = (names.retrain_state_machine, names.rollout_state_machine)
        self._allow(
            role,
            "StartPipelines",
            ["states:StartExecution"],
            [self._arn("states", names.region, f"stateMachine:{m}") for m in machines],
        )
        self._allow(
            role,
            "FollowPipelines",
            ["states:DescribeExecution", "states:GetExecutionHistory"],
            [self._arn("states", names.region, f"execution:{m}:*") for m in machines],
        )

    def _grant_source(
        self, role: iam.IRole, settings: StageSettings, names: ResourceNames, *, same_account: bool
    ) -> None:
        """Reading the stage releases come from: directly in one account, else through its release reader."""
        if same_account:
            self._grant_release_reads(role, names, "ReleaseSource")
            return
        reader = f"arn:{Aws.PARTITION}:iam::{names.account}:role/{names.release_reader_role}"
        self._allow(role, "AssumeReleaseReader", ["sts:AssumeRole"], [reader])

    def _grant_release_reads(self, role: iam.IRole, names: ResourceNames, sid: str) -> None:
        bucket = self._bucket(names)
        self._allow(role, f"{sid}Objects", [GET], [f"{bucket}/{prefix}*" for prefix in RELEASE_READ_PREFIXES])
        self._allow(
            role,
            f"{sid}Listing",
            [LIST],
            [bucket],
            {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in RELEASE_READ_PREFIXES]}},
        )
        self._allow(role, f"{sid}Pointer", ["ssm:GetParameterHistory"], [self._parameter(names)])
