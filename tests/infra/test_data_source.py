"""The Prepare role's grants, generated from the stage's `data` declaration: only what reading that source needs.

The S3 lake's grants are proven both ways under IAM-enforced moto (test_least_privilege.py runs the
dev stage with a declared lake); an Athena source's, which moto cannot run, are asserted here on the
template, cdk-nag included (the synth fails on an unacknowledged wildcard).
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from synth_support import cdk_context, resource_text

from infra.app import FEATURE_FLAGS, build_app

ATHENA = {
    "kind": "athena", "query": "SELECT * FROM sales WHERE dt >= '2026-11-01'", "database": "lake",
    "workgroup": "analysts", "output_uri": "s3://acme-athena/results/", "uris": ["s3://acme-lake/sales/"],
    "target": "churned",
}  # fmt: skip


def _statements(template: Template, role: str) -> dict[str, dict[str, Any]]:
    """The statements, by Sid, of the policies attached to the role whose logical id starts with `role`."""
    found: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [ref["Ref"] for ref in policy["Properties"]["Roles"]]
        if any(name.startswith(role) for name in roles):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found[statement.get("Sid", "")] = statement
    return found


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [resource_text(r) for r in (resources if isinstance(resources, list) else [resources])]


@pytest.fixture(scope="module")
def athena_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    context = cdk_context()
    context["slipway:stages"]["dev"] = {**context["slipway:stages"]["dev"], "data": ATHENA}
    app = App(
        context={**context, "stage": "dev", "aws:cdk:bundling-stacks": []},
        post_cli_context=FEATURE_FLAGS,
        outdir=str(tmp_path_factory.mktemp("athena")),
    )
    _, stack = build_app(app)
    app.synth()  # cdk-nag runs here: an unacknowledged wildcard fails it
    return Template.from_stack(stack)


def test_an_athena_source_may_run_its_query_in_its_workgroup_and_read_its_catalog_tables_and_result(
    athena_template: Template,
) -> None:
    granted = _statements(athena_template, "RetrainPrepareRole")
    query = granted["RunDataQuery"]
    assert sorted(query["Action"]) == ["athena:GetQueryExecution", "athena:StartQueryExecution",
                                       "athena:StopQueryExecution"]  # fmt: skip
    assert _resources(query) == ["arn:<AWS::Partition>:athena:us-east-1:<AWS::AccountId>:workgroup/analysts"]
    catalog = _resources(granted["ReadDataCatalog"])
    assert all(":glue:us-east-1:" in r for r in catalog) and [r.rsplit(":", 1)[1] for r in catalog] == [
        "catalog", "database/lake", "table/lake/*",
    ]  # fmt: skip
    assert not any(
        a.startswith(("glue:Create", "glue:Update", "glue:Delete")) for a in granted["ReadDataCatalog"]["Action"]
    )
    assert _resources(granted["ReadDataSource0"]) == ["arn:<AWS::Partition>:s3:::acme-lake/sales/*"]
    assert granted["ListDataSource0"]["Condition"] == {"StringLike": {"s3:prefix": ["sales/*"]}}
    assert _resources(granted["ReadQueryResults"]) == ["arn:<AWS::Partition>:s3:::acme-athena/results/*"]
    assert _resources(granted["WriteQueryResults"]) == ["arn:<AWS::Partition>:s3:::acme-athena/results/*"]
    writes = [s for s in granted.values() if "s3:PutObject" in s["Action"]]
    assert not any("acme-lake" in r for s in writes for r in _resources(s)), "the tables are never written"


def test_a_recipe_source_grants_no_data_beyond_the_artifacts_bucket(templates: dict[str, Template]) -> None:
    granted = _statements(templates["dev"], "RetrainPrepareRole")
    assert not {"RunDataQuery", "ReadDataCatalog", "ReadDataSource0", "ListDataSource0"} & set(granted)
    keep = " ".join(_resources(granted["KeepTable"]))
    assert "data/table/*" in keep and "data/sources/recipe/*" in keep


def test_a_lake_source_reads_its_prefix_and_lands_no_recipe_table(templates: dict[str, Template]) -> None:
    granted = _statements(templates["dev-lake"], "RetrainPrepareRole")
    assert _resources(granted["ReadDataSource0"]) == ["arn:<AWS::Partition>:s3:::slipway-test-lake/sales/*"]
    assert "data/sources/recipe/*" not in " ".join(_resources(granted["KeepTable"]))
    assert "RunDataQuery" not in granted
