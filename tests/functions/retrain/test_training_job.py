"""The SageMaker engine's job under SageMaker's training contract, pointed at temporary folders: it trains the
same bundle as the Lambda engine's Train step on the same table, byte for byte; CollectCandidate stores it."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from functions.adapters.retrain_store import S3RetrainStore
from functions.core import layout
from functions.retrain import steps
from functions.retrain.schemas import Candidate, PreparedData
from functions.retrain.training_job import CANDIDATE_FILE, check_libraries, run
from functions.training.train import load_recipe
from infra.sagemaker import ENTRY_POINT, source_archive

pytestmark = pytest.mark.handler


def _job_folders(root: Path, store: S3RetrainStore, data: PreparedData) -> dict[str, str]:
    """SageMaker's layout under `root`: the objects the run's manifest file names in the train channel, each at
    its key's path (as a ManifestFile channel lays them), the hyperparameters file, a model folder."""
    channel = root / "input" / "data" / "train"
    prefix, *keys = json.loads(store.get(layout.run_channel_manifest_key(data.run_id)))
    assert prefix == {"prefix": f"s3://{store.bucket}/"} and data.data_key in keys
    for key in keys:
        (channel / key).parent.mkdir(parents=True, exist_ok=True)
        (channel / key).write_bytes(store.get(key))
    config = root / "input" / "config" / "hyperparameters.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"data": data.model_dump_json(), "recipe": "model.recipe", "code_revision": "abc"}))
    return {
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_INPUT_TRAINING_CONFIG_FILE": str(config),
    }


def _lambda_engine(store: S3RetrainStore, data: PreparedData) -> tuple[Candidate, bytes, bytes]:
    candidate = steps.train(store, load_recipe(), data, code_revision="abc")
    prefix = layout.candidate_prefix(candidate.version)
    return candidate, store.get(prefix + layout.MODEL_FILE), store.get(prefix + layout.MANIFEST_FILE)


def test_the_job_trains_the_lambda_engine_s_bundle_byte_for_byte(
    run_table: tuple[S3RetrainStore, PreparedData], tmp_path: Path
) -> None:
    store, data = run_table
    environ = _job_folders(tmp_path, store, data)

    candidate = run(environ)

    expected, onnx_bytes, manifest_bytes = _lambda_engine(store, data)
    model = tmp_path / "model"
    assert candidate == expected
    assert (model / layout.MODEL_FILE).read_bytes() == onnx_bytes
    assert (model / layout.MANIFEST_FILE).read_bytes() == manifest_bytes
    assert Candidate.model_validate_json((model / CANDIDATE_FILE).read_text()) == expected


def test_the_entry_point_runs_from_the_source_archive_alone(
    run_table: tuple[S3RetrainStore, PreparedData], tmp_path: Path
) -> None:
    """As script mode runs it: the archive unpacked, its requirements checked, the hyperparameters in SM_HPS."""
    store, data = run_table
    source = tmp_path / "code"
    with tarfile.open(source_archive(tmp_path / "archive")) as archive:
        archive.extractall(source, filter="data")
    environ = _job_folders(tmp_path / "ml", store, data)
    hyperparameters = json.loads(Path(environ.pop("SM_INPUT_TRAINING_CONFIG_FILE")).read_text())
    # The job imports the archive's code, not the project's: no PYTHONPATH, the script's folder first on the path.
    env = {"PATH": os.environ["PATH"], "SM_HPS": json.dumps(hyperparameters), **environ}

    done = subprocess.run(
        [sys.executable, "-E", "-s", str(source / ENTRY_POINT)], cwd=source, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    # Python compiled what it imported: the archive's modules, not the project's.
    assert list((source / "functions" / "retrain" / "__pycache__").glob("training_job.*.pyc"))
    expected, onnx_bytes, manifest_bytes = _lambda_engine(store, data)
    assert f"candidate {expected.version}" in done.stdout
    assert (tmp_path / "ml" / "model" / layout.MODEL_FILE).read_bytes() == onnx_bytes
    assert (tmp_path / "ml" / "model" / layout.MANIFEST_FILE).read_bytes() == manifest_bytes


def test_a_job_without_the_run_or_with_other_libraries_stops_naming_why(tmp_path: Path) -> None:
    with pytest.raises(steps.StepError, match="no 'data' hyperparameter"):
        run({"SM_HPS": json.dumps({"recipe": "model.recipe"})})
    with pytest.raises(steps.StepError, match="no 'recipe' hyperparameter \\(the stage's recipe module\\)"):
        run({"SM_HPS": json.dumps({"data": "{}"})})
    pins = tmp_path / "requirements.txt"
    pins.write_text("# pins\nnumpy==0.0.1\nscikit-learn==1.4.2\n")
    with pytest.raises(steps.StepError, match=r"numpy .* \(pinned 0\.0\.1\), scikit-learn .* \(pinned 1\.4\.2\)"):
        check_libraries(pins)


def _output(folder: Path, *, drop: str | None = None) -> bytes:
    """The model folder as SageMaker uploads it: model.tar.gz of its files."""
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            if path.name != drop:
                archive.add(path, arcname=path.name)
    return body.getvalue()


def test_collect_stores_the_job_s_candidate_where_evaluate_reads_it(
    run_table: tuple[S3RetrainStore, PreparedData], tmp_path: Path
) -> None:
    store, data = run_table
    candidate = run(_job_folders(tmp_path, store, data))
    store.put(layout.training_job_output_key("run-1"), _output(tmp_path / "model"))

    collected = steps.collect(store, data, "run-1")

    manifest, onnx_bytes = store.get_candidate(collected.version)
    assert collected == candidate
    assert onnx_bytes == (tmp_path / "model" / layout.MODEL_FILE).read_bytes()
    assert manifest.to_json() == (tmp_path / "model" / layout.MANIFEST_FILE).read_bytes()


@pytest.mark.parametrize(
    ("case", "message"),
    [("no output", "left no output"), ("no candidate record", r"lacks \['candidate.json'\]"),
     ("another table", "trained on table")],
)  # fmt: skip
def test_collect_refuses_what_is_not_this_run_s_candidate(
    run_table: tuple[S3RetrainStore, PreparedData], tmp_path: Path, case: str, message: str
) -> None:
    store, data = run_table
    run(_job_folders(tmp_path, store, data))
    changes: dict[str, Any] = {}
    if case == "no candidate record":
        store.put(layout.training_job_output_key("run-1"), _output(tmp_path / "model", drop=CANDIDATE_FILE))
    elif case == "another table":
        store.put(layout.training_job_output_key("run-1"), _output(tmp_path / "model"))
        changes = {"data_hash": "0" * 64}

    with pytest.raises(steps.StepError, match=message):
        steps.collect(store, data.model_copy(update=changes), "run-1")


def _xgboost_recipe() -> ModuleType:
    """The example recipe with an XGBoost classifier (a recipe library: model/requirements.txt names it)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    example = load_recipe()
    recipe = ModuleType("model.recipe")
    recipe.SEED, recipe.TASK, recipe.METRIC = example.SEED, "classification", "roc_auc"  # type: ignore[attr-defined]
    recipe.load_data = example.load_data  # type: ignore[attr-defined]
    recipe.build = lambda seed: Pipeline(  # type: ignore[attr-defined]
        [
            ("scale", StandardScaler()),
            ("model", XGBClassifier(n_estimators=30, max_depth=3, random_state=seed, n_jobs=1)),
        ]
    )
    return recipe


@pytest.fixture
def xgboost_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "model.recipe", _xgboost_recipe())


def test_the_job_trains_an_xgboost_recipe_as_the_lambda_engine_does(
    xgboost_recipe: None, run_table: tuple[S3RetrainStore, PreparedData], tmp_path: Path
) -> None:
    store, data = run_table
    pins = tmp_path / "requirements.txt"
    pins.write_text(f"xgboost-cpu=={importlib.metadata.version('xgboost-cpu')}\n")
    check_libraries(pins)  # the job's check of the recipe's own pin

    candidate = run(_job_folders(tmp_path, store, data))

    expected, onnx_bytes, _ = _lambda_engine(store, data)
    assert candidate == expected and candidate.parity_max_abs_diff < 1e-6
    assert (tmp_path / "model" / layout.MODEL_FILE).read_bytes() == onnx_bytes
    assert b"TreeEnsembleClassifier" in onnx_bytes, "XGBoost's trees, as onnxmltools writes them"
