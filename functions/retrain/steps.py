"""The retrain use cases, one per state of the pipeline. AWS-free: stores and sources are injected."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from types import ModuleType
from typing import Literal, Protocol

import numpy as np
import onnxruntime as ort
from sklearn.model_selection import train_test_split

from functions.core import layout
from functions.core.data_source import DataSource
from functions.core.features import category_texts, encode_columns
from functions.core.gate import (
    CandidateEvidence,
    GateDecision,
    GateEvidence,
    GatePolicy,
    ModelEvidence,
    answer_differences,
    decide,
    spec_differences,
)
from functions.core.labelled import LabelCaps, LabelledRowSource, LabelSources, cap_labelled
from functions.core.manifest import Manifest
from functions.core.predictor import GraphInputs
from functions.core.registry import Registry
from functions.core.segments import SegmentPolicy, count_segments, segment_report
from functions.lake.ingest import (
    LoadedTable,
    QueryRunner,
    Snapshot,
    SourceReader,
    TableStore,
    add_labelled,
    ingest,
    land_recipe_table,
    load_snapshot,
    snapshot_hash,
)
from functions.retrain.schemas import Candidate, DecisionSummary, PreparedData, Promoted, Registered
from functions.training.dataset import TrainingTable
from functions.training.metrics import higher_is_better, holdout_metrics
from functions.training.train import HOLDOUT_SHARE, Bundle, train_bundle

# The Candidate record a SageMaker training job writes beside its bundle (functions.retrain.training_job).
CANDIDATE_FILE = "candidate.json"
# The gate judges both models on the holdout rows newer than live's data when at least this many exist:
# rows live never trained on, from the newest data. Fewer would make a noisy figure.
MIN_NEWER_ROWS = 30


class RetrainStore(TableStore, Protocol):
    """Where the pipeline keeps its objects, the training table's among them (S3RetrainStore)."""

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
    store: RetrainStore,
    reader: SourceReader,
    labelled: LabelledRowSource,
    source: DataSource,
    *,
    artifacts_bucket: str,
    run_id: str,
    reason: str,
    recipe: ModuleType | None = None,
    queries: QueryRunner | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    caps: LabelCaps | None = None,
) -> PreparedData:
    """Bring the table up to the source (the delta only), add the labelled rows, record the run's snapshot.

    A recipe source runs `load_data()` first and lands its table (when `recipe` is given). A bad
    object stops the run here, before training, with the table as the last run left it.
    """
    if source.kind == "recipe" and recipe is not None:
        land_recipe_table(store, recipe)
    report = ingest(
        source, reader, store, artifacts_bucket=artifacts_bucket, now=now or datetime.now(UTC), queries=queries
    )
    if not report.ledger.objects:
        raise StepError(f"no training data: {report.summary()}; see docs/retrain.md, 'Where the data lives'")
    gathered, capped = cap_labelled(
        labelled.labelled_rows(since), table_rows=report.ledger.rows, caps=caps or LabelCaps()
    )
    rows = [(row.features, row.label) for row in gathered]
    store.put(
        layout.run_labels_key(run_id), LabelSources.of(gathered).model_dump_json(indent=2).encode(), "application/json"
    )
    snapshot = add_labelled(
        store,
        report.ledger,
        rows,
        key=layout.run_labelled_key(run_id),
        target=source.target_column,
        key_column=source.key,
    )
    body = snapshot.to_json()
    key = layout.run_snapshot_key(run_id)
    store.put(key, body, "application/json")
    store.put(layout.run_channel_manifest_key(run_id), channel_manifest(artifacts_bucket, key, snapshot))
    dropped = len(report.replaced) + len(report.deleted) + len(report.expired)
    return PreparedData(
        run_id=run_id,
        reason=reason,
        data_key=key,
        data_hash=snapshot_hash(body),
        rows=snapshot.rows,
        table_rows=report.ledger.rows,
        labelled_rows=snapshot.labelled_rows,
        labelled_capped=capped,
        objects=len(report.ledger.objects),
        objects_read=len(report.read),
        objects_dropped=dropped,
        watermark=report.ledger.watermark,
    )


def channel_manifest(bucket: str, snapshot_key: str, snapshot: Snapshot) -> bytes:
    """A SageMaker manifest file naming the snapshot record and every object it reads (engine 'sagemaker')."""
    keys = [snapshot_key, *(item.part_key for item in snapshot.ledger.objects)]
    keys += [snapshot.labelled_key] if snapshot.labelled_key else []
    return json.dumps([{"prefix": f"s3://{bucket}/"}, *keys]).encode()


def train_current(
    store: RetrainStore,
    reader: SourceReader,
    source: DataSource,
    recipe: ModuleType,
    *,
    artifacts_bucket: str,
    code_revision: str | None,
    queries: QueryRunner | None = None,
    now: datetime | None = None,
) -> Bundle:
    """`slipway train` on a stack: bring the table up to the source (landing a recipe's table) and train on it.

    The bundle's lineage records the snapshot, so the pipeline and a training by hand agree on what the
    current data is, and a scheduled run can never promote a model of older data over it.
    """
    if source.kind == "recipe":
        land_recipe_table(store, recipe)
    report = ingest(
        source, reader, store, artifacts_bucket=artifacts_bucket, now=now or datetime.now(UTC), queries=queries
    )
    snapshot = Snapshot(ledger=report.ledger, target=source.target_column, key=source.key)
    table = load_snapshot(store, snapshot)
    lineage = snapshot.lineage(snapshot_hash(snapshot.to_json()))
    return train_bundle(recipe, table.columns, table.target, code_revision=code_revision, data=lineage)


def load_run(store: TrainStore, data: PreparedData) -> tuple[Snapshot, LoadedTable]:
    """The run's snapshot record, checked against its hash, and its rows."""
    body = store.get(data.data_key)
    if snapshot_hash(body) != data.data_hash:
        raise StepError(f"the snapshot at {data.data_key} changed since it was prepared (hash mismatch)")
    snapshot = Snapshot.model_validate_json(body)
    return snapshot, load_snapshot(store, snapshot)


def train(store: TrainStore, recipe: ModuleType, data: PreparedData, *, code_revision: str | None) -> Candidate:
    """Fit the recipe on the run's snapshot, export to ONNX with the parity check (BundleError when refused)."""
    snapshot, table = load_run(store, data)
    bundle = train_bundle(
        recipe, table.columns, table.target, code_revision=code_revision, data=snapshot.lineage(data.data_hash)
    )
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


def holdout_rows(table: TrainingTable, manifest: Manifest) -> np.ndarray:
    """The indices of the rows training held out: the same split train_bundle made (same seed, stratification)."""
    target = table.target.astype(str) if manifest.task == "classification" else table.target
    _, held = train_test_split(
        np.arange(table.rows),
        test_size=HOLDOUT_SHARE,
        random_state=manifest.lineage.seed,
        stratify=target if manifest.task == "classification" else None,
    )
    return np.sort(held)


def holdout_of(table: TrainingTable, manifest: Manifest, rows: np.ndarray | None = None) -> TrainingTable:
    """The held-out rows (or `rows` of them) as a table."""
    held = holdout_rows(table, manifest) if rows is None else rows
    target = table.target.astype(str) if manifest.task == "classification" else table.target
    return TrainingTable({name: values[held] for name, values in table.columns.items()}, target[held])


def judged_rows(
    held: np.ndarray, arrived: np.ndarray, live_watermark: datetime | None
) -> tuple[np.ndarray, Literal["all", "newer than live"]]:
    """The holdout rows the gate judges on: those newer than live's data when there are enough, else all."""
    if live_watermark is None:
        return held, "all"
    newer = held[arrived[held] > live_watermark.timestamp()]
    return (newer, "newer than live") if len(newer) >= MIN_NEWER_ROWS else (held, "all")


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
    _, loaded = load_run(store, data)
    table = TrainingTable(loaded.columns, loaded.target)
    manifest, onnx_bytes = store.get_candidate(candidate.version)
    live_version = registry.live().version
    live_bundle = registry.store.get_bundle(live_version) if live_version is not None else None
    live_watermark = _watermark(live_bundle[0]) if live_bundle is not None else None
    # The gate judges on the user's own rows only: labelled rows from production train, never judge.
    own = holdout_rows(table, manifest)
    own = own[own < data.table_rows]
    judged, scope = judged_rows(own, loaded.arrived, live_watermark)
    holdout = holdout_of(table, manifest, judged)
    candidate_answers = predict(manifest, onnx_bytes, holdout)
    # The gaps of both models over the candidate's segments, when the gate checks them.
    check_gaps = policy.max_gap_increase is not None and bool(manifest.segments)
    parity = manifest.parity
    live, problems = _judge_live(manifest, live_bundle, holdout, check_gaps=check_gaps) if live_bundle else (None, [])
    evidence = GateEvidence(
        metric=manifest.metric,
        higher_is_better=higher_is_better(manifest.metric),
        parity_passed=parity.labels_equal is not False and parity.max_abs_diff <= parity.tolerance,
        candidate=CandidateEvidence(
            version=manifest.version,
            score=metric_of(manifest, candidate_answers, holdout),
            gaps=holdout_gaps(manifest, candidate_answers[0], holdout) if check_gaps else None,
            watermark=_watermark(manifest),
        ),
        live=live,
    )
    verdict, reasons = decide(policy, evidence, spec_problems=problems)
    decision = GateDecision(
        **evidence.model_dump(),
        run_id=data.run_id,
        decided_at=now or datetime.now(UTC),
        verdict=verdict,
        reasons=reasons,
        holdout_rows=holdout.rows,
        tolerance=policy.tolerance,
        floor=policy.floor,
        spec_compatible=not problems,
        data_hash=data.data_hash,
        data_rows=data.rows,
        max_gap_increase=policy.max_gap_increase,
        holdout_scope=scope,
    )
    key = store.put_decision(decision)
    return DecisionSummary(
        verdict=verdict,
        candidate_version=manifest.version,
        live_version=live_version,
        reasons=reasons,
        decision_key=key,
    )


def _judge_live(
    candidate: Manifest, live_bundle: tuple[Manifest, bytes], holdout: TrainingTable, *, check_gaps: bool
) -> tuple[ModelEvidence, list[str]]:
    """The live model on the candidate's holdout, by the candidate's metric (and segments, with `check_gaps`),
    and why the candidate cannot take its place (spec and answer differences)."""
    live_manifest, live_onnx = live_bundle
    problems = [
        *spec_differences(live_manifest.feature_spec, candidate.feature_spec),
        *answer_differences(live_manifest, candidate),
    ]
    score, gaps = None, None
    try:
        answers = predict(live_manifest, live_onnx, holdout)
    except KeyError:  # the live model takes a feature the new table lacks: no comparable figure
        answers = None
    if answers is not None:
        score = metric_of(live_manifest.model_copy(update={"metric": candidate.metric}), answers, holdout)
        gaps = holdout_gaps(candidate, answers[0], holdout) if check_gaps else None
    evidence = ModelEvidence(version=live_manifest.version, score=score, gaps=gaps, watermark=_watermark(live_manifest))
    return evidence, problems


def _watermark(manifest: Manifest) -> datetime | None:
    data = manifest.lineage.data
    return data.watermark if data is not None else None


def register(store: RetrainStore, registry: Registry, version: str) -> Registered:
    """Register the candidate bundle; registering a version already there creates nothing."""
    manifest, onnx_bytes = store.get_candidate(version)
    return Registered(version=version, created=registry.register(manifest, onnx_bytes))


def promote(registry: Registry, version: str, reason: str) -> Promoted:
    """Move the live pointer to `version`, recording the previous one and why."""
    pointer = registry.promote(version, reason)
    return Promoted(live=pointer.version, previous=pointer.previous)
