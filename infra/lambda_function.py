"""One Python Lambda function as every construct of the stack makes it: own log group, own role, traced.

`FunctionDefaults` holds what every function of a stage shares (runtime, architecture,
log retention and removal), decided once by the stack from the settings.
`python_function` is a plain function, not a Construct, so the resources it adds sit
directly under the caller's scope and keep their logical IDs (`<id>Logs`, `<id>Role`, `<id>`);
`WorkflowFunctions` makes the functions of a workflow's steps with it.
The role starts with writes to the function's own log group and, from active tracing,
X-Ray's two actions; callers add their grants to it. Every function logs in Lambda's JSON format
with the log levels below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import FUNCTIONS_DIR, PackageSpec, package_hash, python_bundling
from infra.grants import allow
from infra.log_retention import retention
from infra.nag import acknowledge
from stage.settings import StageSettings

_RUNTIMES = {
    "python3.12": lambda_.Runtime.PYTHON_3_12,
    "python3.13": lambda_.Runtime.PYTHON_3_13,
    "python3.14": lambda_.Runtime.PYTHON_3_14,
}
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
_RUNTIME_REASON = (
    "The runtime is the pinned stage setting inference.runtime (python3.12, 3.13 or 3.14), matched to the "
    "manylinux wheels bundled for it; moving to a newer runtime is a settings change once the pinned wheels "
    "exist for it and its packages pass the package tests."
)
# Lambda's advanced logging controls, the same for every function. In the JSON format the system log level
# applies: at WARN, Lambda's own START, END and REPORT lines (INFO) are dropped, about 300 bytes of CloudWatch
# Logs ingestion per invocation that no alarm, dashboard or query reads (Lambda's Duration, Errors and
# Throttles metrics do not come from them). Lines written to stdout pass unchanged. The application level
# stays INFO: Lambda reads a line without a "level" key (EMF metric documents, capture lines) as INFO, so a
# stricter level would drop the metrics and the captured rows; it matches Powertools' POWERTOOLS_LOG_LEVEL.
LOG_FORMAT = lambda_.LoggingFormat.JSON
APPLICATION_LOG_LEVEL = lambda_.ApplicationLogLevel.INFO
SYSTEM_LOG_LEVEL = lambda_.SystemLogLevel.WARN
_XRAY_REASON = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
    "support no resource-level permissions, so AWS requires Resource '*'."
)


@dataclass(frozen=True, kw_only=True)
class FunctionDefaults:
    """What every Python function of a stage shares."""

    runtime: str
    architecture: str
    log_retention_days: int
    log_removal: RemovalPolicy

    @classmethod
    def of(cls, settings: StageSettings) -> FunctionDefaults:
        return cls(
            runtime=settings.inference.runtime,
            architecture=settings.inference.architecture,
            log_retention_days=settings.logs.retention_days,
            log_removal=RemovalPolicy.RETAIN if settings.storage.retain_data else RemovalPolicy.DESTROY,
        )

    def code(self, spec: PackageSpec) -> lambda_.Code:
        """`spec`'s package as a Lambda asset, built locally (infra.bundling) and hashed by its inputs."""
        return lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            asset_hash=package_hash(spec, architecture=self.architecture, runtime=self.runtime),
            bundling=python_bundling(spec, architecture=self.architecture, runtime=self.runtime),
        )

    def log_group(
        self,
        scope: Construct,
        construct_id: str,
        name: str | None = None,
        *,
        max_days: int | None = None,
        protected: bool = False,
    ) -> logs.LogGroup:
        """A log group with the stage's retention (at most `max_days`) and removal policy.

        `protected`: under its own customer-managed key, with a data-protection policy masking MASKED_DATA.
        """
        days = self.log_retention_days if max_days is None else min(self.log_retention_days, max_days)
        key = _log_key(scope, f"{construct_id}Key", name) if protected else None
        return logs.LogGroup(
            scope,
            construct_id,
            log_group_name=name,
            retention=retention(days),
            removal_policy=self.log_removal,
            encryption_key=key,
            data_protection_policy=logs.DataProtectionPolicy(
                name=f"{construct_id}Masking",
                description="Masks what no log line may show in clear",
                identifiers=list(MASKED_DATA),
            )
            if protected
            else None,
        )


# Identifiers that only ever appear inside JSON strings: masking one inside a number (card or phone
# numbers) would turn a captured row into invalid JSON that capture could no longer read.
MASKED_DATA = (
    logs.DataIdentifier.EMAILADDRESS,
    logs.DataIdentifier.AWSSECRETKEY,
    logs.DataIdentifier.OPENSSHPRIVATEKEY,
    logs.DataIdentifier.PGPPRIVATEKEY,
    logs.DataIdentifier.PKCSPRIVATEKEY,
    logs.DataIdentifier.PUTTYPRIVATEKEY,
)


# What CloudWatch Logs does with a log group's key (AWS's documented key policy, wildcards spelled out).
LOG_KEY_ACTIONS = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
)  # fmt: skip


def _log_key(scope: Construct, construct_id: str, log_group_name: str | None) -> kms.Key:
    """A rotated key that CloudWatch Logs may use for this one log group (and nothing else) of this account."""
    key = kms.Key(
        scope,
        construct_id,
        description=f"Encrypts the log group {log_group_name}",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
        pending_window=Duration.days(30),
    )
    stack = Stack.of(scope)
    log_group_arn = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name or "*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsForThisLogGroup",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOG_KEY_ACTIONS),
            resources=["*"],
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
        )
    )
    return key


@dataclass(frozen=True)
class PythonFunction:
    """The function and the log group and role made for it."""

    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    defaults: FunctionDefaults,
    name: str,
    description: str,
    handler: str,
    code: lambda_.Code,
    memory_mb: int,
    timeout_seconds: int,
    environment: dict[str, str],
    role_description: str,
    reserved_concurrency: int | None = None,
    ephemeral_storage_mb: int | None = None,
    snap_start: bool = False,
    log_max_days: int | None = None,
    log_protected: bool = False,
) -> PythonFunction:
    """Function `name` (construct `construct_id`) with log group `/aws/lambda/<name>` and its own role."""
    log_group = defaults.log_group(
        scope, f"{construct_id}Logs", f"/aws/lambda/{name}", max_days=log_max_days, protected=log_protected
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    allow(role, "WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn])
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=name,
        description=description,
        runtime=_RUNTIMES[defaults.runtime],
        architecture=_ARCHITECTURES[defaults.architecture],
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_seconds),
        reserved_concurrent_executions=reserved_concurrency,
        ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb) if ephemeral_storage_mb else None,
        tracing=lambda_.Tracing.ACTIVE,
        role=role,
        log_group=log_group,
        logging_format=LOG_FORMAT,
        application_log_level_v2=APPLICATION_LOG_LEVEL,
        system_log_level_v2=SYSTEM_LOG_LEVEL,
        environment=environment,
        # Each published version is initialised once and restored from its snapshot at a cold start.
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
    )
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", _XRAY_REASON)
    acknowledge(function, "AwsSolutions-L1", _RUNTIME_REASON)
    return PythonFunction(function=function, role=role, log_group=log_group)


@dataclass(frozen=True, kw_only=True)
class WorkflowFunctions:
    """Makes the functions of one workflow's steps, all alike but for their handler, code and sizing.

    A step's function is construct `<Step>` in `scope`, named by `name_of(step)`, described
    "Slipway <workflow>: <step>", and runs with the workflow's `environment`.
    """

    scope: Construct
    workflow: str  # "retrain" or "rollout"
    name_of: Callable[[str], str]  # a step's function name (stage.names)
    defaults: FunctionDefaults
    environment: dict[str, str]

    def function(
        self,
        step: str,
        handler: str,
        code: lambda_.Code,
        *,
        memory_mb: int,
        timeout_seconds: int,
        ephemeral_storage_mb: int | None = None,
    ) -> lambda_.Function:
        """Step `step`'s function; its role may write its own logs and traces until the stack grants it more."""
        name = self.name_of(step)
        return python_function(
            self.scope,
            step.capitalize(),
            defaults=self.defaults,
            name=name,
            description=f"Slipway {self.workflow}: {step}",
            handler=handler,
            code=code,
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            environment=self.environment,
            role_description=f"{name}: its own logs and traces and only what its step reads and writes",
            ephemeral_storage_mb=ephemeral_storage_mb,
        ).function
