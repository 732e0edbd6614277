"""A candidate version beside the live one: shadow (scored, never answering) or canary (answering a share). AWS-free.

The rollout is part of the live pointer (`LivePointer.rollout`), so one read tells a
container both versions and one write starts, changes or ends a rollout: the model is
data, not code, and nothing is redeployed. Which requests the candidate takes is
decided here, per request: a caller's key (the `X-Slipway-Key` header) always lands in
the same bucket, so a caller who sends one stays on one version while the share holds;
without a key each request is drawn at random.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RolloutMode = Literal["shadow", "canary"]
# The request header that keeps a caller on one version during a canary.
STICKY_HEADER = "X-Slipway-Key"
# Roles of the versions a container serves: the metrics' `model_role` dimension (bounded: two values).
LIVE, CANDIDATE = "live", "candidate"


class Rollout(BaseModel):
    """A candidate in shadow or canary: which version, how, for what share, since when and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: str = Field(min_length=1)
    mode: RolloutMode
    percent: float = Field(
        gt=0, le=100, description="Canary: share of requests the candidate answers. Shadow: share it also scores."
    )
    started_at: datetime
    reason: str = ""
    digest: str | None = Field(None, description="The candidate bundle's full SHA-256, checked when it is loaded.")


def bucket(key: str) -> float:
    """Where a caller's key falls in [0, 100): the same key, the same bucket, in every container."""
    digest = hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def candidate_takes(rollout: Rollout, *, key: str | None, draw: float) -> bool:
    """Whether this request goes to the candidate (canary: answers it; shadow: also scores it).

    `draw` is a uniform number in [0, 1) for a request without a key.
    """
    position = bucket(key) if key else draw * 100
    return position < rollout.percent


class VersionFigures(BaseModel):
    """What one version answered in a window: requests, rows, plan B, latency, and quality from feedback."""

    version: str
    requests: int = 0
    rows: int = 0
    fallback_rows: int = 0
    candidate_errors: int = Field(0, description="Canary requests the candidate could not answer (live did).")
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    quality: float | None = Field(None, description="The recipe's metric on rows that got feedback.")
    labelled_rows: int = 0

    @property
    def fallback_share(self) -> float:
        return self.fallback_rows / self.rows if self.rows else 0.0


class ShadowFigures(BaseModel):
    """The candidate beside live on the same rows: agreement, differences, latency, quality on the same labels."""

    candidate: str
    requests: int = 0
    rows: int = 0
    errors: int = Field(0, description="Shadowed requests the candidate could not score.")
    label_agreement: float | None = Field(None, description="Share of rows with the same label (classification).")
    mean_abs_difference: float | None = Field(
        None, description="Per row: the largest absolute difference of a class probability (classification) or "
        "of the value, relative above 1 (regression); the mean over rows."
    )  # fmt: skip
    p99_abs_difference: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    live_latency_p50_ms: float | None = Field(None, description="Live's scoring latency on the same requests.")
    live_latency_p99_ms: float | None = None
    quality: float | None = None
    live_quality: float | None = Field(None, description="Live's metric on the same labelled rows.")
    labelled_rows: int = 0


class RolloutFigures(BaseModel):
    """A rollout's window [start, end): both versions' figures, the shadow comparison, the candidate's drift."""

    start: datetime
    end: datetime
    metric: str
    higher_is_better: bool
    live: VersionFigures
    candidate: VersionFigures
    shadow: ShadowFigures | None = None
    candidate_drift_share: float | None = Field(None, description="Share of features drifted against its baseline.")
    candidate_drifted_features: list[str] = Field(default_factory=list)


class RolloutPolicy(BaseModel):
    """When a candidate's figures pass (stage settings: `rollout`)."""

    model_config = ConfigDict(frozen=True)

    min_rows: int = Field(200, ge=1, description="Rows a phase needs before it is judged.")
    max_disagreement: float = Field(
        0.05, ge=0, le=1, description="Share of rows whose label may differ from live's (classification)."
    )
    max_p99_difference: float = Field(
        0.2, ge=0, description="Largest p99 of |candidate - live| allowed, in the target's units (regression)."
    )
    max_latency_ratio: float = Field(1.5, ge=1, description="Candidate p99 latency over live's, at most.")
    # Latency on a busy host moves by a millisecond alone: a slowdown below that is no refusal.
    latency_slack_ms: float = Field(
        1.0, ge=0, description="Latency differences below this are never a refusal (noise at sub-ms scale)."
    )
    # A p99 is its 1 % slowest requests: over fewer requests than this it is a handful of outliers, not judged.
    min_requests_for_p99: int = Field(1000, ge=100, description="Requests needed before the latency ratio is judged.")
    max_fallback_increase: float = Field(
        0.0, ge=0, le=1, description="Rise in the share of rows answered by the fallback allowed."
    )
    min_labelled_rows: int = Field(50, ge=1, description="Labelled rows needed before quality is judged.")
    quality_tolerance: float = Field(
        0.01, ge=0, description="How much worse than live the candidate's metric on labelled rows may be."
    )


Decision = Literal["promote", "refuse"]
# check(name, passed, why): records one check of a verdict and, when it failed, why.
Check = Callable[[str, bool, str], None]


class RolloutVerdict(BaseModel):
    """What a phase's figures decided, and every reason against (empty when it passed)."""

    decision: Decision
    reasons: list[str]
    checks: dict[str, bool]


def judge(mode: RolloutMode, figures: RolloutFigures, policy: RolloutPolicy, *, alarms: list[str]) -> RolloutVerdict:
    """Pass a phase when nothing is worse: errors, plan B, latency, disagreement, quality, alarms; else refuse.

    Too few rows to judge is a refusal too (the safe side): lengthen the bake or lower `min_rows`.
    """
    live, candidate, shadow = figures.live, figures.candidate, figures.shadow
    reasons: list[str] = []
    checks: dict[str, bool] = {}

    def check(name: str, passed: bool, why: str) -> None:
        checks[name] = passed
        if not passed:
            reasons.append(why)

    check("no alarm", not alarms, f"serving alarms in ALARM when judged: {', '.join(alarms)}")
    if mode == "shadow":
        compared = shadow.rows if shadow else 0
        check("enough rows", compared >= policy.min_rows, f"{compared} rows compared, fewer than {policy.min_rows}")
        if shadow is not None:
            check("no errors", shadow.errors == 0, f"the candidate failed on {shadow.errors} shadowed requests")
            if shadow.label_agreement is not None:
                disagreement = 1 - shadow.label_agreement
                check(
                    "labels agree",
                    disagreement <= policy.max_disagreement,
                    f"labels differ on {disagreement:.1%} of rows, over {policy.max_disagreement:.1%}",
                )
            if shadow.p99_abs_difference is not None:
                check(
                    "answers close",
                    shadow.p99_abs_difference <= policy.max_p99_difference,
                    f"p99 difference {shadow.p99_abs_difference:.3g}, over {policy.max_p99_difference:g}",
                )
            _latency(check, "p50", shadow.latency_p50_ms, shadow.live_latency_p50_ms, policy)
            if shadow.requests >= policy.min_requests_for_p99:
                _latency(check, "p99", shadow.latency_p99_ms, shadow.live_latency_p99_ms, policy)
            if shadow.labelled_rows >= policy.min_labelled_rows:
                _quality(check, figures, shadow.quality, shadow.live_quality, policy)
    else:
        check("enough rows", candidate.rows >= policy.min_rows,
              f"the candidate answered {candidate.rows} rows, fewer than {policy.min_rows}")  # fmt: skip
        check("no errors", live.candidate_errors == 0,
              f"the candidate failed on {live.candidate_errors} requests (live answered them)")  # fmt: skip
        increase = candidate.fallback_share - live.fallback_share
        check("no more plan B", increase <= policy.max_fallback_increase,
              f"plan B answered {candidate.fallback_share:.1%} of the candidate's rows, "
              f"{live.fallback_share:.1%} of live's")  # fmt: skip
        _latency(check, "p50", candidate.latency_p50_ms, live.latency_p50_ms, policy)
        if min(candidate.requests, live.requests) >= policy.min_requests_for_p99:
            _latency(check, "p99", candidate.latency_p99_ms, live.latency_p99_ms, policy)
        if min(candidate.labelled_rows, live.labelled_rows) >= policy.min_labelled_rows:
            _quality(check, figures, candidate.quality, live.quality, policy)
    return RolloutVerdict(decision="refuse" if reasons else "promote", reasons=reasons, checks=checks)


def _latency(check: Check, which: str, candidate: float | None, live: float | None, policy: RolloutPolicy) -> None:
    if candidate is not None and live is not None and live > 0:
        ratio = candidate / live
        why = (
            f"{which} latency {candidate:.2f} ms is {ratio:.2f}x live's {live:.2f} ms, over "
            f"{policy.max_latency_ratio:g}x and {policy.latency_slack_ms:g} ms"
        )
        check(f"{which} latency", candidate <= live * policy.max_latency_ratio + policy.latency_slack_ms, why)


def _quality(
    check: Check, figures: RolloutFigures, candidate: float | None, live: float | None, policy: RolloutPolicy
) -> None:
    if candidate is None or live is None:
        return
    worse = (live - candidate) if figures.higher_is_better else (candidate - live)
    check("quality", worse <= policy.quality_tolerance,
          f"{figures.metric} from feedback {candidate:.4g} against live's {live:.4g}: worse by more than "
          f"{policy.quality_tolerance:g}")  # fmt: skip
