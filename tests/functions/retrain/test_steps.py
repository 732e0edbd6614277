"""The evaluate step's segment gaps: both models on the same holdout rows, recorded in the decision."""

from __future__ import annotations

import time
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from functions.adapters import factory
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore
from functions.core import layout
from functions.core.data_source import DataSource
from functions.core.gate import GatePolicy
from functions.core.labelled import LabelCaps, LabelledRow, LabelSources, cap_labelled
from functions.core.manifest import Manifest
from functions.core.registry import Registry
from functions.retrain import steps
from functions.retrain.schemas import PreparedData
from functions.training.train import Bundle, load_recipe, load_table
from stage.names import ResourceNames
from tests.lake_data import example_table, parquet


def _segmented_recipe() -> types.ModuleType:
    """The example recipe with a segment feature: the same graph under a new version."""
    example = load_recipe()
    recipe = types.ModuleType("tmp_segmented_example")
    for name in ("SEED", "TASK", "METRIC", "FEATURES", "load_data", "build"):
        setattr(recipe, name, getattr(example, name))
    recipe.SEGMENTS = [("mean_radius", [13.0])]  # type: ignore[attr-defined]
    return recipe


@pytest.mark.parametrize("limit", [None, 0.0])
def test_evaluate_records_both_gaps_when_the_gate_checks_them(
    live_bundle: Bundle, registry: Registry, run_table: tuple[S3RetrainStore, PreparedData], limit: float | None
) -> None:
    store, prepared = run_table
    candidate = steps.train(store, _segmented_recipe(), prepared, code_revision=None)
    summary = steps.evaluate(store, registry, GatePolicy(tolerance=0.01, max_gap_increase=limit), prepared, candidate)

    (decision,) = store.decisions()
    assert decision.max_gap_increase == limit
    if limit is None:
        assert decision.candidate.gaps is None and decision.live is not None and decision.live.gaps is None
        return
    # The same graph answers the same rows: equal gaps, well defined (both bins hold many holdout rows).
    assert decision.live is not None and decision.candidate.gaps == decision.live.gaps
    assert decision.candidate.gaps is not None and 0 < (decision.candidate.gaps["mean_radius"] or 0) <= 1
    assert summary.verdict == "promote"


class _NoLabels:
    def labelled_rows(self, since: object = None) -> list[object]:
        return []


LAKE = "user-lake"
SOURCE = DataSource(kind="s3", uris=(f"s3://{LAKE}/sales/",), target="diagnosis", key="patient_id")


def _lake(names: ResourceNames, first_day_rows: int) -> tuple[Any, S3RetrainStore, S3Source]:
    """A lake whose first day holds example rows 0..first_day_rows; the artifacts store and the source reader."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LAKE)
    s3.put_object(Bucket=LAKE, Key="sales/dt=2026-12-01/a.parquet", Body=parquet(example_table(0, first_day_rows)))
    return s3, S3RetrainStore(factory.client("s3"), names.artifacts_bucket), S3Source(factory.client("s3"))


def test_a_candidate_of_older_data_than_live_is_refused(
    registry: Registry, names: ResourceNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run prepared before newer data was trained by hand and promoted cannot put its older model back."""
    s3, store, lake = _lake(names, 400)
    source, bucket = SOURCE, names.artifacts_bucket
    older = steps.prepare(store, lake, _NoLabels(), source, artifacts_bucket=bucket, run_id="old", reason="test")
    time.sleep(1.1)  # S3 times uploads to the second: the newer object must be a second newer
    s3.put_object(Bucket=LAKE, Key="sales/dt=2026-12-02/a.parquet", Body=parquet(example_table(400, 569)))
    newer = steps.train_current(store, lake, source, load_recipe(), artifacts_bucket=bucket, code_revision=None)
    registry.register(newer.manifest, newer.onnx_bytes)
    registry.promote(newer.version, "trained by hand on the newer data")
    assert newer.manifest.lineage.data is not None and len(newer.manifest.lineage.data.objects) == 2

    candidate = steps.train(store, load_recipe(), older, code_revision=None)
    summary = steps.evaluate(store, registry, GatePolicy(tolerance=1.0), older, candidate)

    assert summary.verdict == "refuse" and any("older than live" in reason for reason in summary.reasons)
    assert registry.live().version == newer.version
    (decision,) = store.decisions()
    live_watermark = decision.live.watermark if decision.live else None
    assert decision.candidate.watermark is not None and live_watermark is not None
    assert decision.candidate.watermark < live_watermark


def test_the_gate_judges_on_the_rows_newer_than_live_s_data(registry: Registry, names: ResourceNames) -> None:
    s3, store, lake = _lake(names, 300)
    source, bucket = SOURCE, names.artifacts_bucket
    live = steps.train_current(store, lake, source, load_recipe(), artifacts_bucket=bucket, code_revision=None)
    registry.register(live.manifest, live.onnx_bytes)
    registry.promote(live.version, "first")
    time.sleep(1.1)
    s3.put_object(Bucket=LAKE, Key="sales/dt=2026-12-02/a.parquet", Body=parquet(example_table(300, 569)))

    prepared = steps.prepare(store, lake, _NoLabels(), source, artifacts_bucket=bucket, run_id="r", reason="test")
    assert prepared.objects == 2 and prepared.objects_read == 1 and prepared.rows == 569
    candidate = steps.train(store, load_recipe(), prepared, code_revision=None)
    steps.evaluate(store, registry, GatePolicy(tolerance=0.01), prepared, candidate)

    (decision,) = store.decisions()
    assert decision.holdout_scope == "newer than live"
    # The holdout is a stratified fifth of all 569 rows; those from the new object are about 269 / 5.
    assert steps.MIN_NEWER_ROWS <= decision.holdout_rows < 114


def test_the_same_snapshot_and_seed_retrain_to_the_byte_identical_bundle(
    run_table: tuple[S3RetrainStore, PreparedData], names: ResourceNames
) -> None:
    store, prepared = run_table
    first = steps.train(store, load_recipe(), prepared, code_revision=None)
    prefix = layout.candidate_prefix(first.version)
    onnx_bytes, manifest = store.get(prefix + layout.MODEL_FILE), store.get(prefix + layout.MANIFEST_FILE)
    again = steps.train(store, load_recipe(), prepared, code_revision=None)
    assert again == first
    assert store.get(prefix + layout.MODEL_FILE) == onnx_bytes and store.get(prefix + layout.MANIFEST_FILE) == manifest
    lineage = Manifest.model_validate_json(manifest).lineage.data
    assert lineage is not None and lineage.snapshot_hash == prepared.data_hash
    assert [o.uri for o in lineage.objects] == [f"s3://{names.artifacts_bucket}/{layout.RECIPE_SOURCE_KEY}"]


class _Flood:
    """Labels from production: one caller flips the true class of every example row it was served, twice over."""

    def __init__(self, rows: int) -> None:
        columns, target = load_table(load_recipe())
        flipped = {"benign": "malignant", "malignant": "benign"}
        served = datetime(2026, 12, 6, tzinfo=UTC)
        self.rows = [
            LabelledRow(
                request_id=f"attack-{i}", row=0, caller="key:attacker", time=served + timedelta(seconds=i),
                features={name: float(values[i % len(target)]) for name, values in columns.items()},
                label=flipped[str(target[i % len(target)])], source=f"feedback/2026/12/06/00/flood-{i % 3}.jsonl",
            )
            for i in range(rows)
        ]  # fmt: skip

    def labelled_rows(self, since: object = None) -> list[LabelledRow]:
        return self.rows


def test_a_flood_of_wrong_labels_from_one_caller_does_not_move_the_promoted_model(
    live_bundle: Bundle, registry: Registry, names: ResourceNames
) -> None:
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)
    flood = _Flood(2 * 569)
    prepared = steps.prepare(
        store, S3Source(factory.client("s3")), flood, DataSource(), artifacts_bucket=names.artifacts_bucket,
        run_id="poisoned", reason="test", recipe=load_recipe(),
    )  # fmt: skip
    # The caller's share is capped: at most half as many rows as the user's own data (569), the newest kept.
    assert (prepared.table_rows, prepared.labelled_rows, prepared.labelled_capped) == (569, 284, 2 * 569 - 284)
    # The run records whose labels it learned from, and from which objects: a purge can find it.
    sources = LabelSources.model_validate_json(store.get(layout.run_labels_key("poisoned")))
    assert sources.rows_by_caller == {"key:attacker": 284}
    assert sources.objects == tuple(f"feedback/2026/12/06/00/flood-{i}.jsonl" for i in range(3))
    candidate = steps.train(store, load_recipe(), prepared, code_revision=None)
    summary = steps.evaluate(store, registry, GatePolicy(tolerance=0.01), prepared, candidate)
    # Judged on the user's own rows only (labelled rows train, never judge): the poisoned candidate is refused.
    (decision,) = store.decisions()
    assert decision.verdict == "refuse" and summary.verdict == "refuse", decision.reasons
    assert decision.candidate.score < decision.live.score - 0.01  # type: ignore[operator,union-attr]
    assert registry.live().version == live_bundle.version


def test_labels_past_the_caps_are_cut_newest_kept_per_caller_then_overall() -> None:
    served = datetime(2026, 12, 6, tzinfo=UTC)
    rows = [
        LabelledRow(request_id=str(i), row=0, caller=caller, time=served + timedelta(seconds=i), features={}, label="x")
        for i, caller in enumerate(["a", "a", "a", "b", "files", "a", "b"])
    ]
    kept, cut = cap_labelled(rows, table_rows=4, caps=LabelCaps(labelled_max_ratio=1.0, caller_max_ratio=0.5))
    # Each caller at most 2 (0.5 x 4): a keeps rows 2 and 5; b 3 and 6; files 4. Then at most 4 overall: the newest.
    assert [row.request_id for row in kept] == ["3", "4", "5", "6"] and cut == 3
    assert cap_labelled(rows, table_rows=4, caps=LabelCaps(labelled_max_ratio=0.0)) == ([], 7)
