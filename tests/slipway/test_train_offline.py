"""`slipway train --out DIR`: the recipe trained, exported and parity-checked with no AWS and no running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.core.manifest import Manifest
from functions.core.predictor import Predictor
from stage.settings import PROJECT_ROOT

pytestmark = pytest.mark.local


def _slipway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "slipway.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_train_out_writes_a_servable_bundle_and_prints_its_spec_without_aws(tmp_path: Path) -> None:
    result = _slipway("train", "--out", str(tmp_path / "bundle"), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    manifest = Manifest.model_validate_json((tmp_path / "bundle" / "manifest.json").read_bytes())
    onnx_bytes = (tmp_path / "bundle" / "model.onnx").read_bytes()
    assert manifest.content_version(onnx_bytes) == manifest.version
    out = result.stdout
    assert f"trained {manifest.version} (classification, 569 rows, seed 42)" in out
    assert "  mean_radius: number, required; training range 6.981 to 28.11, precision 3" in out
    assert "holdout metrics: accuracy " in out and "ONNX parity: max difference" in out and "float64 graph" in out
    predictor = Predictor(manifest, onnx_bytes)
    row = {f.name: f.encode_impute() for f in manifest.feature_spec.features}
    assert predictor.score(predictor.encode([row]))[0]["fallback"] is None
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text())["version"] == manifest.version


def test_train_out_with_promote_is_refused_clearly(tmp_path: Path) -> None:
    result = _slipway("train", "--out", str(tmp_path), "--promote", cwd=tmp_path)

    assert result.returncode == 1
    assert "--promote needs a stack" in result.stderr and "Traceback" not in result.stderr
