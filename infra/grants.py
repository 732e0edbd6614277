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

from functions.core.data_source import DataSource
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

    def allow_listing(self, role: iam.IRole, sid: str, prefixes: Sequence[str] | None) -> None:
        """s3:ListBucket limited to `prefixes` (None: the whole bucket).

        Without it a missing key answers 403, not 404, to a reader.
        """
        conditions = None if prefixes is None else {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}
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
    """Read the declared prefixes of the user's data (data.kind "s3"): list under each, read its objects; no more."""
    for index, location in enumerate(source.locations()):
        bucket_arn = f"arn:{Aws.PARTITION}:s3:::{location.bucket}"
        allow(role, f"ReadDataSource{index}", [GET], [f"{bucket_arn}/{location.prefix}*"])
        allow(role, f"ListDataSource{index}", [LIST], [bucket_arn],
              {"StringLike": {"s3:prefix": [f"{location.prefix}*"]}})  # fmt: skip
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{location.bucket}/{location.prefix}*]",
            f"The declared training data prefix {location.uri} (data.uris): its objects are the user's, added "
            "every day under names known only then; read-only, and nothing else of that bucket.",
        )
