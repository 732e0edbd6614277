"""One Python Lambda function as every construct of the stack makes it: own log group, own role, traced.

`python_function` is a plain function, not a Construct, so the resources it adds sit
directly under the caller's scope and keep their logical IDs (`<id>Logs`, `<id>Role`, `<id>`).
The role starts with writes to the function's own log group and, from active tracing,
X-Ray's two actions; callers add their grants to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import FUNCTIONS_DIR, PackageSpec, package_hash, python_bundling
from infra.log_retention import retention
from infra.nag import acknowledge

_RUNTIMES = {"python3.12": lambda_.Runtime.PYTHON_3_12, "python3.13": lambda_.Runtime.PYTHON_3_13}
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
_XRAY_REASON = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
    "support no resource-level permissions, so AWS requires Resource '*'."
)


@dataclass(frozen=True)
class PythonFunction:
    """The function and the log group and role made for it."""

    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def package_code(spec: PackageSpec, *, architecture: str, runtime: str) -> lambda_.Code:
    """`spec`'s package as a Lambda asset, built locally (infra.bundling) and hashed by its inputs."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash=package_hash(spec, architecture=architecture, runtime=runtime),
        bundling=python_bundling(spec, architecture=architecture, runtime=runtime),
    )


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    description: str,
    handler: str,
    code: lambda_.Code,
    runtime: str,
    architecture: str,
    memory_mb: int,
    timeout_seconds: int,
    environment: dict[str, str],
    log_retention_days: int,
    log_removal: RemovalPolicy,
    role_description: str,
    runtime_reason: str,
    reserved_concurrency: int | None = None,
    statements: Sequence[iam.PolicyStatement] = (),
) -> PythonFunction:
    """Function `name` (construct `construct_id`) with log group `/aws/lambda/<name>` and its own role.

    `statements` join the role's policy before the function adds X-Ray's; `runtime_reason`
    is why the pinned runtime is accepted (cdk-nag AwsSolutions-L1).
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        log_group_name=f"/aws/lambda/{name}",
        retention=retention(log_retention_days),
        removal_policy=log_removal,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    for statement in statements:
        role.add_to_policy(statement)
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=name,
        description=description,
        runtime=_RUNTIMES[runtime],
        architecture=_ARCHITECTURES[architecture],
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_seconds),
        reserved_concurrent_executions=reserved_concurrency,
        tracing=lambda_.Tracing.ACTIVE,
        role=role,
        log_group=log_group,
        environment=environment,
    )
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", _XRAY_REASON)
    acknowledge(function, "AwsSolutions-L1", runtime_reason)
    return PythonFunction(function=function, role=role, log_group=log_group)
