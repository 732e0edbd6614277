"""The rollout state machine's steps, over the registry and the capture: start a phase, judge it, finish.

A rollout (stage/workflows/rollout.py) is a shadow phase, optionally followed by a canary
phase; each bakes, then is judged on the figures of its own window. Passing the last phase
promotes the candidate; a refusal, or any failure, ends the rollout with the live version
untouched. Every verdict is written with its figures under rollouts/<run>/ and returned,
so that the notification and `slipway rollouts` show why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson
from pydantic import AwareDatetime, BaseModel, Field

from functions.core import layout
from functions.core.drift import DriftPolicy
from functions.core.registry import ModelStore, Registry
from functions.core.rollout import RolloutFigures, RolloutMode, RolloutPolicy, RolloutVerdict, judge
from functions.monitor.rollout_figures import RolloutSource, rollout_figures

FinishAction = Literal["promote", "refuse", "abort"]


class StartInput(BaseModel):
    candidate: str = Field(min_length=1)
    mode: RolloutMode
    percent: float = Field(gt=0, le=100)
    reason: str = ""


class JudgeInput(BaseModel):
    candidate: str = Field(min_length=1)
    mode: RolloutMode
    started_at: AwareDatetime
    settle_seconds: int = Field(0, ge=0)
    run_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")


class FinishInput(BaseModel):
    candidate: str = Field(min_length=1)
    action: FinishAction
    reason: str = ""
    run_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")


class PhaseDecision(BaseModel):
    """One judged phase: what it decided, why, on which figures, where the record is."""

    candidate: str
    live: str | None
    mode: RolloutMode
    decision: Literal["promote", "refuse"]
    reasons: list[str]
    checks: dict[str, bool]
    figures: RolloutFigures | None
    alarms: list[str]
    record_key: str


class Outcome(BaseModel):
    candidate: str
    action: FinishAction
    live: str | None
    reason: str


class AlarmReader(Protocol):
    def firing(self, names: list[str]) -> list[str]: ...


class RecordStore(Protocol):
    def put_json(self, key: str, body: bytes) -> None: ...


def execution_input(candidate: str, reason: str, *, bake_seconds: int, settle_seconds: int) -> dict[str, Any]:
    """What a rollout execution starts with (the retrain pipeline's step and `slipway rollout` alike)."""
    return {"candidate": candidate, "bake_seconds": bake_seconds, "settle_seconds": settle_seconds, "reason": reason}


def start(registry: Registry, request: StartInput, *, now: datetime) -> dict[str, Any]:
    """Put the candidate in this phase's mode and share; the phase's window starts now."""
    pointer = registry.start_rollout(request.candidate, request.mode, request.percent, request.reason, now=now)
    assert pointer.rollout is not None
    return {"mode": request.mode, "percent": request.percent, "started_at": pointer.rollout.started_at.isoformat()}


def judge_phase(
    request: JudgeInput,
    *,
    registry: Registry,
    models: ModelStore,
    source: RolloutSource,
    alarms: AlarmReader,
    alarm_names: list[str],
    records: RecordStore,
    policy: RolloutPolicy,
    drift_policy: DriftPolicy,
    now: datetime,
) -> PhaseDecision:
    """The phase's figures over [started_at, now - settle) and the verdict on them, recorded."""
    pointer = registry.live()
    live = pointer.version
    firing = alarms.firing(alarm_names) if alarm_names else []
    figures = None
    rollout = pointer.rollout
    if live is None or rollout is None or rollout.candidate != request.candidate or rollout.mode != request.mode:
        shown = f"{rollout.mode} of {rollout.candidate}" if rollout else "none"
        verdict = RolloutVerdict(
            decision="refuse", reasons=[f"the rollout was changed by hand (now: {shown})"], checks={}
        )
    else:
        figures = rollout_figures(
            source,
            live=models.get_manifest(live),
            candidate=models.get_manifest(request.candidate),
            start=request.started_at,
            end=now - timedelta(seconds=request.settle_seconds),
            drift_policy=drift_policy,
        )
        verdict = judge(request.mode, figures, policy, alarms=firing)
    key = f"{layout.ROLLOUT_PREFIX}{request.run_id}/{request.mode}.json"
    decision = PhaseDecision(
        candidate=request.candidate,
        live=live,
        mode=request.mode,
        **verdict.model_dump(),
        figures=figures,
        alarms=firing,
        record_key=key,
    )
    records.put_json(key, orjson.dumps(decision.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    return decision


def finish(registry: Registry, request: FinishInput, records: RecordStore, *, now: datetime) -> Outcome:
    """Promote the candidate, or end the rollout leaving live as it is; recorded as the run's outcome."""
    if request.action == "promote":
        pointer = registry.promote(request.candidate, f"rollout {request.run_id} passed: {request.reason}", now=now)
        reason = f"{request.candidate} passed every phase and is live"
    else:
        pointer = registry.end_rollout()
        why = "a phase's figures did not pass" if request.action == "refuse" else "a step of the rollout failed"
        reason = f"{request.candidate} refused ({why}); {pointer.version} stays live"
    outcome = Outcome(candidate=request.candidate, action=request.action, live=pointer.version, reason=reason)
    key = f"{layout.ROLLOUT_PREFIX}{request.run_id}/outcome.json"
    records.put_json(key, orjson.dumps({**outcome.model_dump(mode="json"), "at": now.astimezone(UTC).isoformat()}))
    return outcome
