"""infra.grants: a prefix grant is one statement plus the acknowledgement of exactly its wildcard."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.grants import GET, PUT, ArtifactGrants


def test_prefix_grants_are_acknowledged_by_their_exact_finding_and_keys_are_not_wildcards() -> None:
    stack = Stack(App(), "GrantsTest")
    bucket = s3.Bucket(stack, "Artifacts")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    grants = ArtifactGrants(bucket)
    grants.allow(role, "ReadModels", [GET], ["models/", "retrain/runs/"])
    grants.allow_keys(role, "WriteMarker", [PUT], ["retrain/last-trigger.json"])
    grants.allow_listing(role, "ListModels", ["models/"])

    [policy] = Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    tails = [part["Fn::Join"][1][-1] for part in statements["ReadModels"]["Resource"]]
    assert tails == ["/models/*", "/retrain/runs/*"]
    assert statements["WriteMarker"]["Resource"]["Fn::Join"][1][-1] == "/retrain/last-trigger.json"
    assert statements["ListModels"]["Condition"] == {"StringLike": {"s3:prefix": ["models/*"]}}

    acknowledged = {
        rule.removeprefix("Annotation::")
        for entry in role.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule in entry.data
    }
    bucket_id = stack.resolve(stack.get_logical_id(bucket.node.default_child))  # type: ignore[arg-type]
    assert acknowledged == {
        f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/models/*]",
        f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/retrain/runs/*]",
    }
