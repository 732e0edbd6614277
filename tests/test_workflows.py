"""The GitHub Actions workflows: actionlint finds nothing, and the pipeline's rules hold (docs/pipeline.md).

AWS credentials only through OIDC (a role from repository variables, no keys), every action pinned to a
commit, least privilege per job, and production behind its environment's reviewers after dev.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
PINNED_LINE = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
KEY_INPUTS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return dict(document)


def workflow_problems(document: dict[str, Any], text: str) -> list[str]:
    """Every broken rule of one workflow."""
    problems = []
    if "concurrency" not in document:
        problems.append("no concurrency group")
    if re.search(r"secrets\.AWS_|AKIA[0-9A-Z]{16}", text):
        problems.append("AWS keys in secrets or in the file: credentials come from OIDC only")
    for line in text.splitlines():
        if "uses:" in line and "uses: ./" not in line and not PINNED_LINE.search(line.strip()):
            problems.append(f"not pinned to a commit with its version: {line.strip()}")
    for name, job in document["jobs"].items():
        permissions = job.get("permissions")
        if not isinstance(permissions, dict):
            problems.append(f"job {name}: no permissions block")
            permissions = {}
        steps = job.get("steps", [])
        uses = [step["uses"] for step in steps if "uses" in step] + ([job["uses"]] if "uses" in job else [])
        problems += [
            f"job {name}: {use} is not pinned" for use in uses if not (use.startswith("./") or PINNED.match(use))
        ]
        credentials = [step for step in steps if step.get("uses", "").startswith(AWS_CREDENTIALS)]
        if credentials and permissions.get("id-token") != "write":
            problems.append(f"job {name}: assumes an AWS role without id-token: write")
        if not credentials and "id-token" in permissions:
            problems.append(f"job {name}: id-token permission without an AWS role to assume")
        if set(permissions) - {"contents", "id-token"} or permissions.get("contents", "read") != "read":
            problems.append(f"job {name}: permissions beyond contents: read and id-token: write")
        for step in credentials:
            given = step.get("with", {})
            if any(key in given for key in KEY_INPUTS):
                problems.append(f"job {name}: access keys given to {AWS_CREDENTIALS}: use role-to-assume")
            if not str(given.get("role-to-assume", "")).startswith("${{ vars."):
                problems.append(f"job {name}: role-to-assume must come from a repository variable")
    return problems


def all_workflows() -> dict[str, tuple[dict[str, Any], str]]:
    return {path.name: (load(path), path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps_run(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def test_actionlint_finds_nothing() -> None:
    found = subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, sorted(WORKFLOWS.glob("*.yml")))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stdout + found.stderr


@pytest.mark.parametrize("name", sorted(path.name for path in WORKFLOWS.glob("*.yml")))
def test_every_workflow_keeps_the_pipeline_rules(name: str) -> None:
    document, text = all_workflows()[name]
    assert workflow_problems(document, text) == []


def test_the_rules_catch_keys_unpinned_actions_and_missing_permissions() -> None:
    text = """
on: push
jobs:
  deploy:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502 # v4.0.2
        with:
          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}
          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
"""
    document = yaml.safe_load(text)
    document["on"] = document.pop(True)
    assert workflow_problems(document, text) == [
        "no concurrency group",
        "AWS keys in secrets or in the file: credentials come from OIDC only",
        "not pinned to a commit with its version: - uses: actions/checkout@v4",
        "job deploy: no permissions block",
        "job deploy: actions/checkout@v4 is not pinned",
        "job deploy: assumes an AWS role without id-token: write",
        "job deploy: access keys given to aws-actions/configure-aws-credentials@: use role-to-assume",
        "job deploy: role-to-assume must come from a repository variable",
    ]


def test_every_pull_request_runs_make_test_with_cached_packages() -> None:
    document, _ = all_workflows()["test.yml"]
    assert "pull_request" in document["on"]
    job = document["jobs"]["test"]
    assert "make test" in steps_run(job)
    by_action = {step["uses"].split("@")[0]: step.get("with", {}) for step in job["steps"] if "uses" in step}
    assert by_action["actions/setup-python"]["cache"] == "pip"
    assert by_action["actions/setup-python"]["cache-dependency-path"] == "requirements.lock"
    assert by_action["actions/setup-node"]["cache"] == "npm"


def test_main_deploys_dev_then_production_behind_its_reviewers_with_a_rollback() -> None:
    document, _ = all_workflows()["deploy.yml"]
    assert document["on"] == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    dev, production = jobs["dev"], jobs["production"]
    assert dev["needs"] in ("test", ["test"])
    assert "environment" not in dev  # its role trusts the branch: an environment would change the token's subject
    dev_run = steps_run(dev)
    assert "cdk deploy -c stage=dev" in dev_run and "make smoke STAGE=dev" in dev_run
    assert "slipway retrain --stage dev" in dev_run
    assert production["environment"] == "production"
    assert production["needs"] in ("dev", ["dev"])
    prod_run = steps_run(production)
    assert "cdk deploy -c stage=prod" in prod_run and "make smoke STAGE=prod" in prod_run
    assert 'slipway release "$VERSION" --from dev --stage prod' in prod_run
    [rollback] = [step for step in production["steps"] if "rollback" in step.get("run", "")]
    assert rollback["if"] == "failure() && steps.release.outcome == 'success'"
    assert "slipway stop-rollout --stage prod" in rollback["run"]
    assert production["concurrency"]["cancel-in-progress"] is False
