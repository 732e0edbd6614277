"""The real CLI: `cdk synth` of every stage (Lambda package really built once), cfn-lint, cdk-nag, bad settings."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from synth_support import CHECKOV_CONFIG, PROJECT_ROOT, STAGES, checkov_failures

from functions.dependencies import DEPENDENCIES_ZIP
from infra.bundling import LAMBDA_UNZIPPED_LIMIT, find_runtime_interpreter, folder_size
from infra.nag import MIN_REASON_LENGTH
from tests.assembly import synth as cdk_synth


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cloud assembly holding every stage; dev bundles the package, prod reuses it (same hash)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    for stage in STAGES:
        result = cdk_synth(stage, outdir)
        assert result.returncode == 0, f"cdk synth -c stage={stage} failed:\n{result.stdout}\n{result.stderr}"
    yield outdir


def _function_asset_dir(assembly: Path, stage: str) -> Path:
    template = json.loads((assembly / f"slipway-{stage}.template.json").read_text())
    [function] = [
        r for key, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and key.startswith("ServingFunction")
    ]  # fmt: skip
    return assembly / function["Metadata"]["aws:asset:path"]


def test_inference_package_is_built_and_under_the_lambda_limit(assembly: Path) -> None:
    package = _function_asset_dir(assembly, "dev")
    assert (package / "functions" / "inference" / "config.py").is_file()
    assert (package / "functions" / "core" / "layout.py").is_file()
    assert not (package / "functions" / "training").exists()
    assert (package / "onnxruntime").is_dir() and (package / "numpy").is_dir()
    assert (package / "pydantic_core").is_dir(), "pydantic 2 needs pydantic-core's manylinux wheel"
    assert not (package / "onnxruntime" / "tools").exists()
    assert not list(package.rglob("tests")), "test folders are trimmed"
    assert not list(package.rglob("*.pyi"))
    native = list((package / "pydantic_core").glob("_pydantic_core.*.so"))
    assert native and all("aarch64" in so.name for so in native), native
    size = folder_size(package)
    print(f"\ninference package (dev, arm64, unzipped): {size / 1e6:.1f} MB ({size / 2**20:.1f} MiB)")
    assert size <= LAMBDA_UNZIPPED_LIMIT, f"unzipped package is {size / 2**20:.1f} MiB, over Lambda's 250 MiB"
    assert _function_asset_dir(assembly, "prod") == package  # same inputs, same asset


def test_cfn_lint_passes_on_every_template(assembly: Path) -> None:
    templates = sorted(str(p) for p in assembly.glob("*.template.json"))
    assert len(templates) == len(STAGES)
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "cfn-lint"), "--", *templates],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_has_no_open_findings_and_every_acknowledgement_has_a_reason(assembly: Path) -> None:
    report = json.loads((assembly / "validation-report.json").read_text())
    assert all(plugin.get("conclusion") != "failure" for plugin in report["pluginReports"]), report
    acknowledged: dict[str, str] = {}
    for stage in STAGES:
        metadata = json.loads((assembly / f"slipway-{stage}.metadata.json").read_text())
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        acknowledged[f"{path} {rule}"] = reason
    assert acknowledged, "expected the documented acknowledgements"
    for rule, reason in acknowledged.items():
        assert len(reason) >= MIN_REASON_LENGTH and len(set(reason.split())) >= 8, f"weak reason for {rule}: {reason!r}"
    doc = (PROJECT_ROOT / "docs" / "security.md").read_text()
    for rule in {key.split(" ", 1)[1].removeprefix("Annotation::").split("[", 1)[0] for key in acknowledged}:
        assert rule in doc, f"docs/security.md does not explain the acknowledgement of {rule}"


def test_unknown_stage_fails_synth_with_a_readable_message(tmp_path: Path) -> None:
    result = cdk_synth("nope", tmp_path)
    assert result.returncode != 0
    assert "unknown stage 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_through_context_fails_synth_naming_the_setting(tmp_path: Path) -> None:
    stages = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]["slipway:stages"]
    stages["dev"] = {"inference": {"reserved_concurrency": -1}}
    result = cdk_synth("dev", tmp_path, "-c", f"slipway:stages={json.dumps(stages)}")
    assert result.returncode != 0
    assert "inference.reserved_concurrency" in result.stderr


def test_training_package_is_built_trimmed_and_under_the_lambda_limit(assembly: Path) -> None:
    template = json.loads((assembly / "slipway-dev.template.json").read_text())
    [function] = [
        r for key, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and key.startswith("RetrainTrain")
    ]  # fmt: skip
    package = assembly / function["Metadata"]["aws:asset:path"]
    assert (package / "functions" / "retrain" / "handler.py").is_file()
    assert (package / "model" / "recipe.py").is_file()
    with zipfile.ZipFile(package / DEPENDENCIES_ZIP) as bundle:
        names = bundle.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"sklearn", "scipy", "skl2onnx", "onnxruntime", "numpy"} <= tops, sorted(tops)
    assert not (package / "sklearn").exists(), "the dependencies ship zipped, not beside the code"
    assert not any(name.startswith("onnx/backend/test/") for name in names)
    assert not [name for name in names if "/tests/" in name], "test folders are trimmed"
    assert any(name.endswith(".pyc") for name in names) == (find_runtime_interpreter("3.12") is not None)
    with zipfile.ZipFile(package / DEPENDENCIES_ZIP) as bundle:
        unzipped = sum(info.file_size for info in bundle.infolist())
    zipped = (package / DEPENDENCIES_ZIP).stat().st_size
    print(f"\ntraining dependencies: {unzipped / 2**20:.1f} MiB unzipped, {zipped / 2**20:.1f} MiB zipped")
    size = folder_size(package)
    print(f"\ntraining package (dev, arm64, unzipped): {size / 1e6:.1f} MB ({size / 2**20:.1f} MiB)")
    assert size <= LAMBDA_UNZIPPED_LIMIT, f"unzipped package is {size / 2**20:.1f} MiB, over Lambda's 250 MiB"


def test_checkov_passes_on_every_template_and_every_skip_has_a_reason(assembly: Path) -> None:
    """checkov offline, beside cfn-lint and cdk-nag; what it accepts is in .checkov.yaml, each with its reason."""
    skips = re.findall(r"^\s+- (CKV_\w+)\s+#\s*(.+)$", CHECKOV_CONFIG.read_text(), flags=re.MULTILINE)
    assert skips, "expected the accepted checkov findings in .checkov.yaml"
    for check, reason in skips:
        assert len(set(reason.split())) >= 8, f"weak reason for {check}: {reason!r}"
    templates = sorted(assembly.glob("*.template.json"))
    failed = checkov_failures(templates)
    assert not failed, f"checkov findings (fix them or give a reason in .checkov.yaml): {failed}"
