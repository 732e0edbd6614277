"""The retrain use cases, one per state of the pipeline. AWS-free: stores and sources are injected."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from types import ModuleType
from typing import Protocol

import numpy as np
import onnxruntime as ort
from sklearn.model_selection import train_test_split

from functions.core import layout
from functions.core.features import category_texts, encode_columns
from functions.core.gate import GateDecision, GatePolicy, decide, spec_differences
from functions.core.labelled import LabelledRowSource
from functions.core.manifest import Manifest
from functions.core.predictor import GraphInputs
from functions.core.registry import Registry
from functions.core.segments import SegmentPolicy, count_segments, segment_report
from functions.retrain.schemas import Candidate, DecisionSummary, PreparedData, Promoted, Registered
from functions.training.dataset import TrainingTable
from functions.training.metrics import higher_is_better, holdout_metrics
from functions.training.train import HOLDOUT_SHARE, train_bundle

# The Candidate record a SageMaker training job writes beside its bundle (functions.retrain.training_job).
CANDIDATE_FILE = "candidate.json"


class RetrainStore(Protocol):
    """Where the pipeline keeps its objects (functions.adapters.retrain_store.S3RetrainStore)."""

    def get(self, key: str) -> bytes: ...
    def put(self, key: str, body: bytes, content_type: str = ...) -> None: ...
    def put_candidate(self, manifest: Manifest, onnx_bytes: bytes) -> None: ...
    def get_candidate(self, version: str) -> tuple[Manifest, bytes]: ...
    def put_decision(self, decision: GateDecision) -> str: ...


class TrainStore(Protocol):
    """What the Train step reads and writes: the run's table, the candidate bundle (S3, or a training job's folders)."""

    def get(self, key: str) -> bytes: ...
    def put_candidate(self, manifest: Manifest, onnx_bytes: bytes) -> None: ...


class StepError(RuntimeError):
    """A retrain step cannot go on; the message says what is missing."""


def prepare(
    store: RetrainStore, labelled: LabelledRowSource, *, run_id: str, reason: str, since: datetime | None = None
) -> PreparedData:
    """The base data set plus the labelled rows gathered since `since`, written for this run with its hash."""
    try:
        base = TrainingTable.from_jsonl(store.get(layout.BASE_DATA_KEY))
    except KeyError as exc:
        raise StepError(
            f"no base data set at s3://.../{layout.BASE_DATA_KEY}: run `slipway train` to seed it from the recipe"
        ) from exc
    rows = labelled.labelled_rows(since)
    table = base.with_labelled(rows) if rows else base
    key = layout.run_data_key(run_id)
    store.put(key, table.to_jsonl(), "application/x-ndjson")
    return PreparedData(
        run_id=run_id,
        reason=reason,
        data_key=key,
        data_hash=table.hash,
        rows=table.rows,
        base_rows=base.rows,
        labelled_rows=len(rows),
    )


def train(store: TrainStore, recipe: ModuleType, data: PreparedData, *, code_revision: str | None) -> Candidate:
    """Fit the recipe on the run's table, export to ONNX with the parity check (BundleError when refused)."""
    table = TrainingTable.from_jsonl(store.get(data.data_key))
    if table.hash != data.data_hash:
        raise StepError(f"the table at {data.data_key} changed since it was prepared (hash mismatch)")
    bundle = train_bundle(recipe, table.columns, table.target, code_revision=code_revision)
    store.put_candidate(bundle.manifest, bundle.onnx_bytes)
    manifest = bundle.manifest
    return Candidate(
        version=bundle.version,
        metric=manifest.metric,
        score=manifest.metrics[manifest.metric],
        parity_max_abs_diff=manifest.parity.max_abs_diff,
        data_hash=data.data_hash,
    )


def collect(store: RetrainStore, data: PreparedData, job_name: str) -> Candidate:
    """A SageMaker training job's candidate, checked and stored where Evaluate reads it (engine 'sagemaker')."""
    key = layout.training_job_output_key(job_name)
    try:
        body = store.get(key)
    except KeyError as exc:
        raise StepError(f"training job {job_name} left no output at {key}") from exc
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        files = {member.name.removeprefix("./"): member for member in archive.getmembers() if member.isfile()}
        missing = sorted({layout.MODEL_FILE, layout.MANIFEST_FILE, CANDIDATE_FILE} - set(files))
        if missing:
            raise StepError(f"training job {job_name}'s output lacks {missing} (it holds {sorted(files)})")

        def read(name: str) -> bytes:
            extracted = archive.extractfile(files[name])
            assert extracted is not None  # a regular file
            return extracted.read()

        manifest = Manifest.model_validate_json(read(layout.MANIFEST_FILE))
        onnx_bytes = read(layout.MODEL_FILE)
        candidate = Candidate.model_validate_json(read(CANDIDATE_FILE))
    if manifest.content_version(onnx_bytes) != manifest.version or candidate.version != manifest.version:
        raise StepError(f"training job {job_name}'s bundle does not match its version {candidate.version}")
    if candidate.data_hash != data.data_hash:
        raise StepError(f"training job {job_name} trained on table {candidate.data_hash[:12]}, not this run's")
    store.put_candidate(manifest, onnx_bytes)
    return candidate


def holdout_of(table: TrainingTable, manifest: Manifest) -> TrainingTable:
    """The rows training held out: the same split train_bundle made (same seed, same stratification)."""
    target = table.target.astype(str) if manifest.task == "classification" else table.target
    indices = np.arange(table.rows)
    _, held = train_test_split(
        indices,
        test_size=HOLDOUT_SHARE,
        random_state=manifest.lineage.seed,
        stratify=target if manifest.task == "classification" else None,
    )
    held = np.sort(held)
    return TrainingTable({name: values[held] for name, values in table.columns.items()}, target[held])


def predict(manifest: Manifest, onnx_bytes: bytes, holdout: TrainingTable) -> tuple[np.ndarray, np.ndarray | None]:
    """The graph's answers on `holdout`: labels and probabilities, or values (KeyError when a feature is missing)."""
    columns = {name: holdout.columns[name] for name in manifest.feature_spec.names}
    spec = manifest.feature_spec
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    feed = GraphInputs.of(session).feed(encode_columns(spec, columns), category_texts(spec, columns))
    outputs = session.run(None, feed)
    if manifest.task == "classification":
        return np.asarray(outputs[0]).astype(str), np.asarray(outputs[1])
    return np.asarray(outputs[0], np.float64).reshape(-1), None


def metric_of(manifest: Manifest, answers: tuple[np.ndarray, np.ndarray | None], holdout: TrainingTable) -> float:
    """The manifest's gate metric of `answers` (from `predict`) on `holdout`."""
    predicted, probabilities = answers
    classes = list(manifest.classes or ())
    if manifest.task == "classification":
        metrics = holdout_metrics("classification", holdout.target, predicted, probabilities, classes)
    else:
        metrics = holdout_metrics("regression", holdout.target.astype(float), predicted, None, classes)
    return metrics[manifest.metric]


def score(manifest: Manifest, onnx_bytes: bytes, holdout: TrainingTable) -> float:
    """The manifest's gate metric of this ONNX graph on `holdout` (raises KeyError when a feature is missing)."""
    return metric_of(manifest, predict(manifest, onnx_bytes, holdout), holdout)


def holdout_gaps(segmented: Manifest, predicted: np.ndarray, holdout: TrainingTable) -> dict[str, float | None]:
    """Per segment feature of `segmented`, the gap of `predicted` on the holdout rows.

    The demographic-parity gap (regression: the mean-prediction gap in std of `segmented`'s training
    predictions), over the segments with the monitor's default minimum of rows; None below two.
    """
    counts = count_segments(segmented, holdout.columns, predicted.tolist())
    report = segment_report(segmented, counts, [], SegmentPolicy())
    return {feature.feature: feature.largest_gap for feature in report.features}


def evaluate(
    store: RetrainStore,
    registry: Registry,
    policy: GatePolicy,
    data: PreparedData,
    candidate: Candidate,
    *,
    now: datetime | None = None,
) -> DecisionSummary:
    """Score candidate and live on the same holdout, apply the gate, write the decision with its figures."""
    table = TrainingTable.from_jsonl(store.get(data.data_key))
    manifest, onnx_bytes = store.get_candidate(candidate.version)
    holdout = holdout_of(table, manifest)
    candidate_answers = predict(manifest, onnx_bytes, holdout)
    candidate_score = metric_of(manifest, candidate_answers, holdout)
    # The gaps of both models over the candidate's segments, when the gate checks them.
    check_gaps = policy.max_gap_increase is not None and bool(manifest.segments)
    candidate_gaps = holdout_gaps(manifest, candidate_answers[0], holdout) if check_gaps else None
    live_gaps: dict[str, float | None] | None = None
    parity = manifest.parity
    parity_passed = parity.labels_equal is not False and parity.max_abs_diff <= parity.tolerance

    live_version = registry.live().version
    live_score: float | None = None
    problems: list[str] = []
    if live_version is not None:
        live_manifest, live_onnx = registry.store.get_bundle(live_version)
        problems = spec_differences(live_manifest.feature_spec, manifest.feature_spec)
        try:
            live_answers = predict(live_manifest, live_onnx, holdout)
        except KeyError:  # the live model takes a feature the new table lacks: no comparable figure
            live_answers = None
        if live_answers is not None:
            live_score = metric_of(live_manifest.model_copy(update={"metric": manifest.metric}), live_answers, holdout)
            if check_gaps:
                live_gaps = holdout_gaps(manifest, live_answers[0], holdout)
    better_high = higher_is_better(manifest.metric)
    verdict, reasons = decide(
        policy=policy,
        metric=manifest.metric,
        higher_is_better=better_high,
        candidate_version=manifest.version,
        candidate_score=candidate_score,
        parity_passed=parity_passed,
        spec_problems=problems,
        live_version=live_version,
        live_score=live_score,
        candidate_gaps=candidate_gaps,
        live_gaps=live_gaps,
    )
    decision = GateDecision(
        run_id=data.run_id,
        decided_at=now or datetime.now(UTC),
        verdict=verdict,
        reasons=reasons,
        candidate_version=manifest.version,
        live_version=live_version,
        metric=manifest.metric,
        higher_is_better=better_high,
        candidate_score=candidate_score,
        live_score=live_score,
        holdout_rows=holdout.rows,
        tolerance=policy.tolerance,
        floor=policy.floor,
        parity_passed=parity_passed,
        spec_compatible=not problems,
        data_hash=data.data_hash,
        data_rows=data.rows,
        max_gap_increase=policy.max_gap_increase,
        candidate_gaps=candidate_gaps,
        live_gaps=live_gaps,
    )
    key = store.put_decision(decision)
    return DecisionSummary(
        verdict=verdict,
        candidate_version=manifest.version,
        live_version=live_version,
        reasons=reasons,
        decision_key=key,
    )


def register(store: RetrainStore, registry: Registry, version: str) -> Registered:
    """Register the candidate bundle; registering a version already there creates nothing."""
    manifest, onnx_bytes = store.get_candidate(version)
    return Registered(version=version, created=registry.register(manifest, onnx_bytes))


def promote(registry: Registry, version: str, reason: str) -> Promoted:
    """Move the live pointer to `version`, recording the previous one and why."""
    pointer = registry.promote(version, reason)
    return Promoted(live=pointer.version, previous=pointer.previous)
