"""The one way the stack grants access: least-privilege statements, each prefix wildcard acknowledged for cdk-nag.

`ArtifactGrants` grants a role actions on key prefixes (or exact keys) of the artifacts
bucket and, for every prefix wildcard, adds the cdk-nag acknowledgement that names it
exactly; `allow` is the same for any other resource (a parameter, a queue, a bus).
Constructs grant their own functions with these; grants between components are made
in infra/stack.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnElement, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from functions.core.data_source import DataSource, S3Location, parse_s3_uri
from infra.nag import acknowledge

GET, PUT, LIST = "s3:GetObject", "s3:PutObject", "s3:ListBucket"
_WHY = (
    "the keys below it (model versions, job ids, run ids, Firehose objects, batch objects) are made at run "
    "time, so they can only be named by prefix."
)


def allow(
    role: iam.IRole,
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    conditions: dict[str, Any] | None = None,
) -> None:
    """Add one statement to `role`'s policy."""
    role.add_to_principal_policy(
        iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources), conditions=conditions)
    )


class ArtifactGrants:
    """Access to the artifacts bucket by key prefix."""

    def __init__(self, bucket: s3.IBucket) -> None:
        self.bucket = bucket
        resource = bucket.node.default_child
        assert isinstance(resource, CfnElement)
        stack = Stack.of(bucket)
        self._bucket_id = stack.resolve(stack.get_logical_id(resource))

    def objects(self, prefix: str) -> str:
        """The ARN of every object under `prefix`."""
        return self.bucket.arn_for_objects(f"{prefix}*")

    def allow(
        self, role: iam.IRole, sid: str, actions: Sequence[str], prefixes: Sequence[str], why: str = _WHY
    ) -> None:
        """`actions` on the objects under each of `prefixes`, every prefix wildcard acknowledged on `role`."""
        allow(role, sid, actions, [self.objects(prefix) for prefix in prefixes])
        self.acknowledge(role, prefixes, why)

    def allow_keys(self, role: iam.IRole, sid: str, actions: Sequence[str], keys: Sequence[str]) -> None:
        """`actions` on exact object keys (no wildcard)."""
        allow(role, sid, actions, [self.bucket.arn_for_objects(key) for key in keys])

    def allow_listing(self, role: iam.IRole, sid: str, prefixes: Sequence[str]) -> None:
        """s3:ListBucket, always limited to `prefixes` (an exact key lists that key alone).

        Without it a missing key answers 403, not 404, to a reader.
        """
        conditions = {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}
        allow(role, sid, [LIST], [self.bucket.bucket_arn], conditions)

    def acknowledge(self, construct: IConstruct, prefixes: Sequence[str], why: str = _WHY) -> None:
        """Accept the wildcard of each prefix `construct`'s policy holds, by its exact cdk-nag finding id."""
        for prefix in prefixes:
            acknowledge(
                construct,
                f"AwsSolutions-IAM5[Resource::<{self._bucket_id}.Arn>/{prefix}*]",
                f"Only the {prefix} prefix of the artifacts bucket: {why}",
            )


def grant_data_source(role: iam.IRole, source: DataSource) -> None:
    """What reading the declared training data needs (data.kind "s3" or "athena"), and nothing more.

    s3: list under each prefix, read its objects. athena: the same on the tables' locations (Athena
    reads them as the caller), the query's workgroup, the Glue catalog entries of its database, and the
    result prefix, where Athena writes as the caller and Prepare reads the result.
    """
    for index, location in enumerate(source.locations()):
        _read_prefix(role, f"DataSource{index}", location, "the declared training data prefix (data.uris)")
    if source.kind != "athena" or source.output_uri is None:
        return
    stack = Stack.of(role)
    output = parse_s3_uri(source.output_uri)
    _read_prefix(role, "QueryResults", output, "Athena's result prefix (data.output_uri)")
    # Athena, acting as the caller, asks where each bucket it reads or writes is (no prefix in that request).
    buckets = sorted({location.bucket for location in (*source.locations(), output)})
    allow(role, "LocateQueryBuckets", ["s3:GetBucketLocation"], [f"arn:{Aws.PARTITION}:s3:::{b}" for b in buckets])
    allow(role, "WriteQueryResults", ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
          [f"arn:{Aws.PARTITION}:s3:::{output.bucket}/{output.prefix}*"])  # fmt: skip
    workgroup = stack.format_arn(service="athena", resource="workgroup", resource_name=source.workgroup)
    allow(role, "RunDataQuery", ["athena:StartQueryExecution", "athena:GetQueryExecution",
                                 "athena:StopQueryExecution"], [workgroup])  # fmt: skip
    catalog = [
        stack.format_arn(service="glue", resource="catalog"),
        stack.format_arn(service="glue", resource="database", resource_name=source.database),
        stack.format_arn(service="glue", resource="table", resource_name=f"{source.database}/*"),
    ]
    allow(role, "ReadDataCatalog", ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition",
                                    "glue:GetPartitions"], catalog)  # fmt: skip
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:{stack.region}:<AWS::AccountId>:table/"
        f"{source.database}/*]",
        f"The tables of the declared database {source.database} (data.database) the data query may name; read-only "
        "catalog entries, and no other database.",
    )


def grant_label_files(role: iam.IRole, location: S3Location) -> None:
    """Read (and list) the declared label files' prefix, data.labels; nothing else of that bucket."""
    _read_prefix(role, "LabelFiles", location, "the declared label files' prefix (data.labels)")


def _read_prefix(role: iam.IRole, name: str, location: S3Location, what: str) -> None:
    bucket_arn = f"arn:{Aws.PARTITION}:s3:::{location.bucket}"
    allow(role, f"Read{name}", [GET], [f"{bucket_arn}/{location.prefix}*"])
    allow(role, f"List{name}", [LIST], [bucket_arn], {"StringLike": {"s3:prefix": [f"{location.prefix}*"]}})
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{location.bucket}/{location.prefix}*]",
        f"Only {location.uri}, {what}: its objects are named when they are written; read-only, nothing else of "
        "that bucket.",
    )
