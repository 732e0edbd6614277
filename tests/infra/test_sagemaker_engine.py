"""`retrain.engine: "sagemaker"`: the Train state runs AWS's prebuilt scikit-learn container on the project's
source archive; the template passes cfn-lint and cdk-nag; the job's role reads the run tables, writes its output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from synth_support import PROJECT_ROOT, TOKEN, cdk_context, resources, state_machine_definition

from functions.core import layout
from infra.app import FEATURE_FLAGS, build_app
from infra.pinning import pip_platform_args, read_pins
from infra.sagemaker import ENTRY_POINT, REGISTRIES, REQUIREMENTS, source_archive, training_image_uri
from stage.settings import settings_from_context

pytestmark = pytest.mark.infra


def _context() -> dict[str, Any]:
    context = cdk_context()
    dev = context["slipway:stages"]["dev"]
    # The second example as the stage's recipe: the job must train what the stage names.
    context["slipway:stages"]["dev"] = {
        **dev, "retrain": {**dev.get("retrain", {}), "engine": "sagemaker"}, "recipe": "model.examples.penguins",
    }  # fmt: skip
    return context


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Template]:
    out = tmp_path_factory.mktemp("sagemaker")
    app = App(
        context={**_context(), "stage": "dev", "aws:cdk:bundling-stacks": []},
        post_cli_context=FEATURE_FLAGS,
        outdir=str(out),
    )
    _, stack = build_app(app)
    app.synth()
    return out, Template.from_stack(stack)


def test_the_train_state_runs_the_prebuilt_scikit_learn_container_on_the_source_archive(
    synthesized: tuple[Path, Template],
) -> None:
    _, template = synthesized
    settings = settings_from_context(_context(), "dev").retrain
    states = state_machine_definition(template, "slipway-dev-retrain")["States"]
    train = states["Train"]
    parameters = train["Parameters"]

    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert parameters["AlgorithmSpecification"] == {
        "TrainingImage": training_image_uri("us-east-1"), "TrainingInputMode": "File",
    }  # fmt: skip
    assert parameters["AlgorithmSpecification"]["TrainingImage"].startswith(REGISTRIES["us-east-1"])
    assert parameters["RoleArn"] == TOKEN
    resources_ = {"InstanceType": settings.sagemaker_instance_type, "InstanceCount": 1}
    assert parameters["ResourceConfig"] == {**resources_, "VolumeSizeInGB": settings.sagemaker_volume_gb}
    assert parameters["StoppingCondition"] == {"MaxRuntimeInSeconds": settings.sagemaker_max_runtime_seconds}
    [channel] = parameters["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    # The run's snapshot and the parts it names, listed by the manifest file Prepare writes for the run.
    source = channel["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "ManifestFile"
    assert source["S3Uri.$"].endswith(
        f"/{layout.RETRAIN_RUNS_PREFIX}{{}}/{layout.CHANNEL_MANIFEST_FILE}', $.data.run_id)"
    )
    assert parameters["OutputDataConfig"]["S3OutputPath"].endswith(f"/{layout.SAGEMAKER_OUTPUT_PREFIX}")
    hyperparameters = parameters["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == ENTRY_POINT
    assert hyperparameters["sagemaker_submit_directory"] == TOKEN  # the source archive's asset URL
    assert hyperparameters["data.$"] == "States.JsonToString($.data)"
    assert hyperparameters["recipe"] == "model.examples.penguins"
    assert parameters["TrainingJobName.$"] == "$.data.run_id"
    assert train["TimeoutSeconds"] > settings.sagemaker_max_runtime_seconds
    assert train["Next"] == "CollectCandidate"
    collect = states["CollectCandidate"]
    assert collect["Parameters"] == {"data.$": "$.data", "training_job.$": "$.training_job.training_job"}
    assert (collect["ResultPath"], collect["Next"]) == ("$.candidate", "Evaluate")


def test_the_source_archive_is_an_asset_of_the_training_code_and_the_recipe(synthesized: tuple[Path, Template]) -> None:
    out, _ = synthesized
    [archive] = [p for p in out.glob("asset.*") if p.name.endswith(".tar.gz") or (p.is_file() and p.suffix == ".gz")]
    with tarfile.open(archive) as opened:
        names = set(opened.getnames())
        requirements = opened.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {ENTRY_POINT, "functions/retrain/training_job.py", "functions/training/train.py", "model/recipe.py"} <= names
    assert "scikit-learn==" in requirements and "# model/requirements.txt" in requirements
    assert source_archive(out / "again").read_bytes() == archive.read_bytes(), "the same sources, the same bytes"


def _statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    roles = {key for key in resources(template, "AWS::IAM::Role") if key.startswith(role_prefix)}
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if any(role.get("Ref") in roles for role in policy["Properties"]["Roles"]):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_job_s_role_reads_the_run_tables_and_its_archive_and_writes_its_output_only(
    synthesized: tuple[Path, Template],
) -> None:
    _, template = synthesized
    statements = _statements(template, "RetrainSageMakerTrainingRole")
    by_action: dict[str, list[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append(json.dumps(statement["Resource"]))
    s3_writes = [a for a in by_action if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))]
    assert s3_writes == ["s3:PutObject"], by_action
    assert all(layout.SAGEMAKER_OUTPUT_PREFIX in resource for resource in by_action["s3:PutObject"])
    artifacts_reads = [r for r in by_action["s3:GetObject"] if "Artifacts" in r]
    assert artifacts_reads and all(layout.RETRAIN_RUNS_PREFIX in r for r in artifacts_reads)
    assert {a.split(":")[0] for a in by_action} <= {"s3", "logs"}, sorted(by_action)


def test_the_template_passes_cfn_lint_and_cdk_nag(synthesized: tuple[Path, Template]) -> None:
    out, _ = synthesized
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "cfn-lint"), "--", str(out / "slipway-dev.template.json")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "validation-report.json").read_text())
    assert all(plugin.get("conclusion") != "failure" for plugin in report["pluginReports"]), report


def test_a_region_without_a_prebuilt_image_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"set retrain\.sagemaker_image_uri"):
        training_image_uri("xx-nowhere-1")


# What the container holds before it installs the archive's requirements and Slipway's set leaves out (the
# Lambda runtime provides them too): the training toolkit's boto3, which pip finds installed and needs no hash for.
CONTAINER_PROVIDES = {"boto3", "botocore", "jmespath", "s3transfer", "urllib3"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_archive_s_requirements_pin_a_hash_of_every_file_the_container_s_pip_installs(tmp_path: Path) -> None:
    """The container installs them with dependencies and checks hashes: every dependency pinned, its file hashed."""
    with tarfile.open(source_archive(tmp_path / "archive")) as opened:
        (tmp_path / "requirements.txt").write_bytes(opened.extractfile("requirements.txt").read())  # type: ignore[union-attr]
    pins = {_canonical(pin.name): pin for pin in read_pins(tmp_path / "requirements.txt")}
    assert set(pins) == {_canonical(pin.name) for path in REQUIREMENTS for pin in read_pins(path)}
    assert all(pin.hashes for pin in pins.values())
    # The resolution the container's pip makes (Python 3.12 on x86_64), without hash mode, which would stop at boto3's.
    bare = tmp_path / "bare.txt"
    bare.write_text("".join(f"{pin.name}=={pin.version}{pin.marker}\n" for pin in pins.values()))
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
         "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12", *pip_platform_args("x86_64"),
         "--requirement", str(bare)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    installs = json.loads(report.stdout)["install"]
    unpinned = {_canonical(item["metadata"]["name"]) for item in installs} - set(pins)
    assert unpinned <= CONTAINER_PROVIDES, f"the container's pip would refuse these unpinned dependencies: {unpinned}"
    for item in installs:
        pin = pins.get(_canonical(item["metadata"]["name"]))
        if pin is not None:
            digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
            assert digest in pin.hashes, f"{pin.name}: {item['download_info']['url']} is not among its hashes"
