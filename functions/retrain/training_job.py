"""The SageMaker engine's training job: the Lambda engine's Train step, run under SageMaker's training contract.

With `retrain.engine: "sagemaker"` the Train state is a SageMaker training job in AWS's
prebuilt scikit-learn container (script mode). Its source archive (infra/sagemaker.py)
holds Slipway's training code, `model/`, the pinned training requirements (which the
container installs before it starts) and `slipway_train.py`, which calls `main()` here:

- the run's snapshot record and the table's parts it names arrive in the `train` channel
  (`SM_CHANNEL_TRAIN`, under /opt/ml/input/data/train, each at its key's path: a manifest-file
  channel Prepare writes) and the run's `PreparedData` as the `data` hyperparameter
  (`SM_HPS`, or /opt/ml/input/config/hyperparameters.json);
- the installed libraries must be the pinned ones (the container's own scikit-learn is
  replaced by the pin): a difference stops the job before training, named;
- training is `functions.retrain.steps.train`, the Lambda engine's own function, over
  folders instead of S3: same table, same seed, same bundle and version;
- the bundle and the `Candidate` record go to the model folder (`SM_MODEL_DIR`,
  /opt/ml/model), which SageMaker uploads as `model.tar.gz` to the job's output path;
  the CollectCandidate state (`steps.collect`) checks that archive and stores the
  candidate where Evaluate reads it.

AWS-free: every path comes from the environment SageMaker sets.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from functions.core import layout
from functions.core.manifest import Manifest
from functions.retrain.schemas import Candidate, PreparedData
from functions.retrain.steps import CANDIDATE_FILE, StepError, train
from functions.training.train import load_recipe

SOURCE_REQUIREMENTS = "requirements.txt"  # in the source archive, beside slipway_train.py
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


@dataclass(frozen=True)
class JobFolders:
    """The job's input channel and model folder, as the Train step's store (`steps.TrainStore`)."""

    channel: Path
    model_dir: Path

    def get(self, key: str) -> bytes:
        """The channel's copy of the object `key` (a manifest-file channel keeps each key's path)."""
        path = self.channel / PurePosixPath(key)
        if not path.is_file():
            raise KeyError(f"{key}: not in the train channel {self.channel} ({sorted(os.listdir(self.channel))})")
        return path.read_bytes()

    def put_candidate(self, manifest: Manifest, onnx_bytes: bytes) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        (self.model_dir / layout.MODEL_FILE).write_bytes(onnx_bytes)
        (self.model_dir / layout.MANIFEST_FILE).write_bytes(manifest.to_json())


def hyperparameters(environ: Mapping[str, str]) -> dict[str, str]:
    """The job's hyperparameters: `SM_HPS` (script mode), else the file SageMaker writes."""
    if "SM_HPS" in environ:
        return {key: str(value) for key, value in json.loads(environ["SM_HPS"]).items()}
    path = Path(environ.get("SM_INPUT_TRAINING_CONFIG_FILE", "/opt/ml/input/config/hyperparameters.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def check_libraries(requirements: Path) -> None:
    """Stop unless every `name==version` pin of `requirements` is what is installed (the bundle depends on them)."""
    differ = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match is None:
            continue
        name, pinned = match.group(1).split("[")[0], match.group(2)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            differ.append(f"{name} {installed} (pinned {pinned})")
    if differ:
        raise StepError(
            "the training container's libraries differ from the pins the Lambda engine trains with, so the bundle "
            f"could differ: {', '.join(differ)}; the container installs {requirements.name} before training (script "
            "mode): check its log"
        )


def run(environ: Mapping[str, str], *, requirements: Path | None = None) -> Candidate:
    """One training job: the run's table in, the candidate bundle and its record out (to the model folder)."""
    parameters = hyperparameters(environ)
    for name, meaning in (("data", "the run's PreparedData"), ("recipe", "the stage's recipe module")):
        if name not in parameters:
            raise StepError(f"the training job has no {name!r} hyperparameter ({meaning}): {sorted(parameters)}")
    if requirements is not None:
        check_libraries(requirements)
    data = PreparedData.model_validate_json(parameters["data"])
    folders = JobFolders(
        channel=Path(environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
        model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
    )
    recipe = load_recipe(parameters["recipe"])
    candidate = train(folders, recipe, data, code_revision=parameters.get("code_revision") or None)
    (folders.model_dir / CANDIDATE_FILE).write_text(candidate.model_dump_json(), encoding="utf-8")
    return candidate


def main() -> int:
    """The entry point `slipway_train.py` calls; SageMaker marks the job failed on a non-zero exit."""
    source = Path(sys.argv[0]).resolve().parent
    try:
        candidate = run(os.environ, requirements=source / SOURCE_REQUIREMENTS)
    except Exception as exc:  # the job's failure reason is the last lines of its log
        print(f"slipway training job failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"slipway training job: candidate {candidate.version} {candidate.metric} {candidate.score:.4f}", flush=True)
    return 0
