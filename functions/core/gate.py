"""The retrain gate: whether a candidate model may replace the live one, decided from plain figures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.core.features import FeatureSpec
from functions.core.manifest import Manifest

Verdict = Literal["promote", "refuse", "unchanged"]


class GatePolicy(BaseModel):
    """The gate's settings (retrain.gate in the stage settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = Field(0.01, ge=0, description="How much worse than live the candidate's metric may be.")
    floor: float | None = Field(
        None, description="The candidate must score at least this (at most, when lower is better)."
    )
    allow_incompatible_spec: bool = Field(
        False, description="Promote a candidate whose feature names, types or order changed."
    )
    max_gap_increase: float | None = Field(
        None,
        ge=0,
        description="Refuse a candidate whose demographic-parity gap (regression: mean-prediction gap) on the "
        "holdout exceeds live's by more than this, on a segment feature the candidate declares; None: off.",
    )


class ModelEvidence(BaseModel):
    """What the gate weighs of one model, scored on the holdout."""

    model_config = ConfigDict(frozen=True)

    version: str
    score: float | None = Field(description="The gate metric on the holdout; None: live could not be scored.")
    # Per segment feature, the model's demographic-parity gap (regression: mean-prediction gap, in training
    # prediction std) on the holdout; None when the gap check is off or nothing was declared.
    gaps: dict[str, float | None] | None = None
    # How recent the model's training data is (the upload time of its newest object).
    watermark: datetime | None = None


class CandidateEvidence(ModelEvidence):
    """The candidate's figures: it is always scored."""

    score: float


class GateEvidence(BaseModel):
    """What the gate weighs of the two models, recorded again in its decision."""

    model_config = ConfigDict(frozen=True)

    metric: str
    higher_is_better: bool
    parity_passed: bool
    candidate: CandidateEvidence
    live: ModelEvidence | None = Field(description="None: there is no live model yet.")

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_records(cls, data: Any) -> Any:
        """Decisions written before the two models were nested named each figure candidate_* and live_*."""
        if not isinstance(data, dict) or "candidate_version" not in data:
            return data
        flat = dict(data)
        candidate, live = ({k: flat.pop(f"{side}_{k}", None) for k in _FIGURES} for side in ("candidate", "live"))
        return {**flat, "candidate": candidate, "live": live if live["version"] is not None else None}


_FIGURES = tuple(ModelEvidence.model_fields)


class GateDecision(GateEvidence):
    """One decision of the gate, with every figure it was made from (written to S3, shown by `slipway models`)."""

    run_id: str
    decided_at: datetime
    verdict: Verdict
    reasons: list[str]
    holdout_rows: int
    tolerance: float
    floor: float | None
    spec_compatible: bool
    data_hash: str
    data_rows: int
    max_gap_increase: float | None = None
    # Which holdout rows judged the models: those newer than live's data when there are enough, else all of it.
    holdout_scope: Literal["all", "newer than live"] = "all"

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"


def spec_differences(live: FeatureSpec, candidate: FeatureSpec) -> list[str]:
    """Why `candidate` cannot answer `live`'s requests: names, order or types differ. Ranges may move."""
    live_names, candidate_names = live.names, candidate.names
    if live_names != candidate_names:
        added = [n for n in candidate_names if n not in live_names]
        removed = [n for n in live_names if n not in candidate_names]
        if added or removed:
            return [f"features added {added} and removed {removed}"]
        return ["features reordered"]
    return [
        f"feature {a.name!r} changed type from {a.type.value} to {b.type.value}"
        for a, b in zip(live.features, candidate.features, strict=True)
        if a.type is not b.type
    ]


def answer_differences(live: Manifest, candidate: Manifest) -> list[str]:
    """Why `candidate` would answer differently in kind: another task, or another set of classes (a label from
    production must never slip a new class into the model: the gate refuses it unless allowed, as a spec change)."""
    if live.task != candidate.task:
        return [f"the task changed from {live.task} to {candidate.task}"]
    if set(live.classes or ()) != set(candidate.classes or ()):
        return [f"the classes changed from {sorted(live.classes or ())} to {sorted(candidate.classes or ())}"]
    return []


def decide(policy: GatePolicy, evidence: GateEvidence, *, spec_problems: list[str]) -> tuple[Verdict, list[str]]:
    """Promote when the candidate is within `tolerance` of live, above the floor, parity passed, the spec fits,
    its data is no older than live's and (when `max_gap_increase` is set) no segment feature's gap widens by
    more than it."""
    metric, higher_is_better = evidence.metric, evidence.higher_is_better
    candidate, live = evidence.candidate, evidence.live
    if live is not None and candidate.version == live.version:
        return "unchanged", [f"candidate {candidate.version} is the live version: nothing to promote"]
    sign = 1.0 if higher_is_better else -1.0
    reasons: list[str] = []
    live_score, live_gaps, live_watermark = (live.score, live.gaps, live.watermark) if live else (None, None, None)
    if candidate.watermark is not None and live_watermark is not None and candidate.watermark < live_watermark:
        reasons.append(
            f"trained on data up to {candidate.watermark.isoformat()}, older than live's "
            f"{live_watermark.isoformat()}: a model never goes back to older data"
        )
    if not evidence.parity_passed:
        reasons.append("the ONNX export failed its parity check")
    if spec_problems and not policy.allow_incompatible_spec:
        reasons.append("feature spec incompatible with live: " + "; ".join(spec_problems))
    if policy.floor is not None and sign * (candidate.score - policy.floor) < 0:
        reasons.append(
            f"{metric} {candidate.score:.4f} is {'below' if higher_is_better else 'above'} the floor {policy.floor:.4f}"
        )
    if live_score is not None and sign * (candidate.score - live_score) < -policy.tolerance:
        reasons.append(
            f"{metric} {candidate.score:.4f} is worse than live {live_score:.4f} by over {policy.tolerance:g}"
        )
    reasons += gap_increases(policy.max_gap_increase, candidate.gaps or {}, live_gaps or {})
    if reasons:
        return "refuse", reasons
    if live is None:
        return "promote", ["no live model yet"]
    if live_score is None:
        return "promote", [
            f"{metric} {candidate.score:.4f}; live {live.version} was not scored on this holdout (feature spec changed)"
        ]
    return "promote", [f"{metric} {candidate.score:.4f} vs live {live_score:.4f}, tolerance {policy.tolerance:g}"]


def gap_increases(
    limit: float | None, candidate_gaps: Mapping[str, float | None], live_gaps: Mapping[str, float | None]
) -> list[str]:
    """Why the candidate widens a gap across segments beyond `limit` (nothing when off or not comparable)."""
    if limit is None:
        return []
    reasons = []
    for feature, gap in candidate_gaps.items():
        live = live_gaps.get(feature)
        if gap is not None and live is not None and gap - live > limit:
            reasons.append(
                f"the gap across segments of {feature!r} widens from live {live:.4f} to {gap:.4f}, "
                f"over the allowed increase {limit:g}"
            )
    return reasons
