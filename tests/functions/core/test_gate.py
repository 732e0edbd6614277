"""The gate: promote within tolerance of live, refuse below it, and say why in words a person reads."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.gate import GateDecision, GateEvidence, GatePolicy, answer_differences, decide
from functions.training.train import Bundle

POLICY = GatePolicy(tolerance=0.01)


def _decide(
    policy: GatePolicy = POLICY,
    spec_problems: list[str] | None = None,
    *,
    candidate: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    no_live: bool = False,
    **overrides: Any,
) -> tuple[str, list[str]]:
    """The gate's verdict on a candidate "new" and a live "old" scoring 0.95 each, with what the test changes."""
    evidence = {
        "metric": "roc_auc",
        "higher_is_better": True,
        "parity_passed": True,
        "candidate": {"version": "new", "score": 0.95, **(candidate or {})},
        "live": None if no_live else {"version": "old", "score": 0.95, **(live or {})},
    }
    return decide(policy, GateEvidence.model_validate({**evidence, **overrides}), spec_problems=spec_problems or [])


def test_within_tolerance_of_live_promotes_with_both_scores() -> None:
    verdict, reasons = _decide(candidate={"score": 0.945})
    assert verdict == "promote"
    assert reasons == ["roc_auc 0.9450 vs live 0.9500, tolerance 0.01"]


def test_worse_than_live_by_more_than_the_tolerance_is_refused() -> None:
    verdict, reasons = _decide(candidate={"score": 0.93})
    assert verdict == "refuse"
    assert reasons == ["roc_auc 0.9300 is worse than live 0.9500 by over 0.01"]


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    assert _decide(metric="rmse", higher_is_better=False, candidate={"score": 0.5}, live={"score": 0.45})[0] == "refuse"
    assert (
        _decide(metric="rmse", higher_is_better=False, candidate={"score": 0.4}, live={"score": 0.45})[0] == "promote"
    )


def test_a_live_model_without_a_score_on_this_holdout_promotes_and_says_so() -> None:
    """An incompatible spec (allowed by the setting) leaves the live model unscored on the new holdout."""
    policy = GatePolicy(tolerance=0.01, allow_incompatible_spec=True)
    verdict, reasons = _decide(policy=policy, spec_problems=["features reordered"], live={"score": None})
    assert verdict == "promote"
    assert reasons == ["roc_auc 0.9500; live old was not scored on this holdout (feature spec changed)"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"parity_passed": False}, "the ONNX export failed its parity check"),
        ({"spec_problems": ["features reordered"]}, "feature spec incompatible with live: features reordered"),
        ({"policy": GatePolicy(tolerance=0.01, floor=0.97)}, "roc_auc 0.9500 is below the floor 0.9700"),
    ],
)
def test_each_refusal_names_its_reason(overrides: dict[str, Any], reason: str) -> None:
    assert _decide(**overrides) == ("refuse", [reason])


def test_the_live_version_itself_is_unchanged_and_no_live_model_promotes() -> None:
    assert _decide(candidate={"version": "old"})[0] == "unchanged"
    assert _decide(no_live=True) == ("promote", ["no live model yet"])


def test_a_candidate_widening_a_segment_gap_beyond_the_limit_is_refused() -> None:
    policy = GatePolicy(tolerance=0.01, max_gap_increase=0.05)
    verdict, reasons = _decide(
        policy=policy, candidate={"gaps": {"sex": 0.30, "age": 0.12}}, live={"gaps": {"sex": 0.20, "age": 0.1}}
    )
    assert verdict == "refuse"
    assert reasons == [
        "the gap across segments of 'sex' widens from live 0.2000 to 0.3000, over the allowed increase 0.05"
    ]


def test_segment_gaps_are_not_checked_when_off_or_not_comparable() -> None:
    assert (
        _decide(candidate={"gaps": {"sex": 0.9}}, live={"gaps": {"sex": 0.1}})[0] == "promote"
    )  # max_gap_increase is off by default
    on = GatePolicy(tolerance=0.01, max_gap_increase=0.05)
    assert _decide(policy=on, candidate={"gaps": {"sex": 0.9}}, live={"gaps": {"sex": None}})[0] == "promote"
    assert _decide(policy=on, candidate={"gaps": {"sex": 0.12}}, live={"gaps": {"sex": 0.1}})[0] == "promote"


def test_a_changed_class_set_or_task_is_a_contract_change_the_gate_refuses(bundle: Bundle) -> None:
    live = bundle.manifest
    assert answer_differences(live, live) == []
    invented = live.model_copy(update={"classes": (*(live.classes or ()), "benign-ish")})
    [problem] = answer_differences(live, invented)
    assert problem == "the classes changed from ['benign', 'malignant'] to ['benign', 'benign-ish', 'malignant']"
    verdict, reasons = _decide(spec_problems=[problem])
    assert verdict == "refuse" and reasons == [f"feature spec incompatible with live: {problem}"]
    regression = live.model_copy(update={"task": "regression", "classes": None})
    assert answer_differences(live, regression) == ["the task changed from classification to regression"]


def test_a_decision_recorded_with_flat_candidate_and_live_figures_still_reads() -> None:
    """Decisions in a stage's bucket from before the two models' figures were nested stay readable (release,
    `slipway models`)."""
    flat = {
        "run_id": "run-1", "decided_at": "2026-01-05T10:00:00Z", "verdict": "promote", "reasons": ["ok"],
        "candidate_version": "new", "live_version": "old", "metric": "roc_auc", "higher_is_better": True,
        "candidate_score": 0.95, "live_score": 0.94, "holdout_rows": 40, "tolerance": 0.01, "floor": None,
        "parity_passed": True, "spec_compatible": True, "data_hash": "abc", "data_rows": 200,
        "candidate_gaps": {"sex": 0.1}, "live_gaps": None, "candidate_watermark": "2026-01-04T00:00:00Z",
    }  # fmt: skip
    decision = GateDecision.model_validate(flat)
    assert decision.candidate.model_dump(mode="json") == {
        "version": "new", "score": 0.95, "gaps": {"sex": 0.1}, "watermark": "2026-01-04T00:00:00Z"
    }  # fmt: skip
    assert decision.live is not None and decision.live.model_dump(exclude_none=True) == {
        "version": "old",
        "score": 0.94,
    }
    assert GateDecision.model_validate({**flat, "live_version": None, "live_score": None}).live is None
    assert GateDecision.model_validate_json(decision.model_dump_json()) == decision
