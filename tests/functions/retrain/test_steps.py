"""The evaluate step's segment gaps: both models on the same holdout rows, recorded in the decision."""

from __future__ import annotations

import types

import pytest

from functions.adapters import factory
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.gate import GatePolicy
from functions.core.registry import Registry
from functions.retrain import steps
from functions.training.base_data import seed_base_data
from functions.training.train import Bundle, load_recipe
from stage.names import ResourceNames


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
    live_bundle: Bundle, registry: Registry, names: ResourceNames, limit: float | None
) -> None:
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)
    seed_base_data(store)
    prepared = steps.prepare(store, _NoLabels(), run_id="run-1", reason="test")
    candidate = steps.train(store, _segmented_recipe(), prepared, code_revision=None)
    summary = steps.evaluate(store, registry, GatePolicy(tolerance=0.01, max_gap_increase=limit), prepared, candidate)

    (decision,) = store.decisions()
    assert decision.max_gap_increase == limit
    if limit is None:
        assert decision.candidate_gaps is None and decision.live_gaps is None
        return
    # The same graph answers the same rows: equal gaps, well defined (both bins hold many holdout rows).
    assert decision.candidate_gaps == decision.live_gaps and decision.candidate_gaps is not None
    assert 0 < (decision.candidate_gaps["mean_radius"] or 0) <= 1
    assert summary.verdict == "promote"


class _NoLabels:
    def labelled_rows(self, since: object = None) -> list[object]:
        return []
