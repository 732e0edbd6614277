"""Helpers of the infrastructure tests: synthesize a stage in-process, pick resources."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import FEATURE_FLAGS, build_app
from stage.settings import load_context

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """cdk.json's context, deep-copied, with top-level `overrides`."""
    context = copy.deepcopy(load_context())
    context.update(overrides)
    return context


# The user's lake of the "dev-lake" template: a bucket the stack does not own, one prefix of it declared.
LAKE_BUCKET = "slipway-test-lake"
LAKE_DATA = {
    "kind": "s3",
    "uris": [f"s3://{LAKE_BUCKET}/sales/"],
    "target": "diagnosis",
    "key": "patient_id",
    "labels": f"s3://{LAKE_BUCKET}/labels/",
}


# The API clients of the "dev-lake" template: two keys, each under its own usage plan.
LAKE_CLIENTS = ["client", "partner"]


ESTIMATED_QUALITY_ALARM_BELOW = 0.85  # the "dev-lake" template's monitor.estimated_quality_alarm_below


def lake_context() -> dict[str, Any]:
    """cdk.json's context with dev training from a declared S3 lake (data.kind "s3"), for two API clients, and
    alarming on the quality estimated without labels."""
    context = cdk_context()
    dev = context["slipway:stages"]["dev"]
    api = {**dev.get("api", {}), "clients": LAKE_CLIENTS}
    monitor = {**dev.get("monitor", {}), "estimated_quality_alarm_below": ESTIMATED_QUALITY_ALARM_BELOW}
    context["slipway:stages"]["dev"] = {**dev, "data": LAKE_DATA, "api": api, "monitor": monitor}
    return context


def iam_context() -> dict[str, Any]:
    """cdk.json's context with dev switched to IAM auth, as `-c` would do it."""
    context = cdk_context()
    context["slipway:stages"]["dev"] = {**context["slipway:stages"]["dev"], "api": {"auth": "iam"}}
    return context


def synth(context: dict[str, Any], stage: str, outdir: Path) -> Template:
    app = App(
        context={**context, "stage": stage, "aws:cdk:bundling-stacks": []},
        post_cli_context=FEATURE_FLAGS,
        outdir=str(outdir),
    )
    _, stack = build_app(app)
    return Template.from_stack(stack)


def resource_text(value: Any) -> str:
    """A resource of the template as one string: CloudFormation's Fn::Join parts joined, Refs (pseudo parameters
    included) by name."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(resource_text(part) for part in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    return str(value)


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(type_)


def only(template: Template, type_: str) -> dict[str, Any]:
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


TOKEN = "TOKEN"


def state_machine_definition(template: Template, name: str) -> dict[str, Any]:
    """The definition of state machine `name` as AWS receives it, each CDK token (an ARN, a name) as TOKEN."""
    [machine] = template.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
    ).values()
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict):  # Fn::Join of literal parts and tokens, each token inside a JSON string
        body = "".join(part if isinstance(part, str) else TOKEN for part in body["Fn::Join"][1])
    return dict(json.loads(body))


CHECKOV_CONFIG = PROJECT_ROOT / ".checkov.yaml"


def checkov_failures(templates: Sequence[Path]) -> list[tuple[str, str, str]]:
    """checkov offline over `templates` in one run (its start-up costs seconds): each failed check, resource and file.

    What it accepts is in .checkov.yaml, each with its reason.
    """
    from tests.assembly import tool_venv

    checkov = tool_venv("checkov", Path(__file__).with_name("checkov-requirements.txt"), Path(sys.executable))
    files = [argument for template in templates for argument in ("-f", str(template))]
    result = subprocess.run(
        [str(checkov.parent / "checkov"), "--config-file", str(CHECKOV_CONFIG), *files, "-o", "json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"checkov printed no report: {result.stderr[-2000:]}") from exc
    reports = report if isinstance(report, list) else [report]
    failed = [
        (f["check_id"], f["resource"], Path(f["file_path"]).name)
        for r in reports
        for f in r["results"]["failed_checks"]
    ]
    if not failed and result.returncode != 0:
        raise AssertionError(f"checkov exited {result.returncode}: {result.stderr[-2000:]}")
    return failed
