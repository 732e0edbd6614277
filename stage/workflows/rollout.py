"""The rollout state machine's definition (Amazon States Language), built once for CDK and the local stack.

A rollout is a shadow phase, then (for `canary`) a canary phase. Each phase: Start (the
pointer names the candidate, its mode and share) -> Bake (the execution's `bake_seconds`)
-> Settle (`settle_seconds`: capture's delivery delay) -> Judge (the phase's figures and
verdict, recorded) -> the next phase, or Promote when it was the last; a refusal goes to
Refuse, which ends the rollout with the live version untouched. Any failure is caught:
Abort ends the rollout the same way, then the failure is notified and the execution fails.

The execution's input: {"candidate", "reason", "bake_seconds", "settle_seconds"}
(functions.rollout.steps.execution_input).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from stage.settings import StageSettings
from stage.workflows.retrain import lambda_task, notify_task, retry_transient

FAILED_STATE = "RolloutFailed"


@dataclass(frozen=True, kw_only=True)
class RolloutSteps:
    """Where each state's work runs."""

    start: str
    judge: str
    finish: str
    notify_topic: str


@dataclass(frozen=True)
class Phase:
    mode: Literal["shadow", "canary"]
    percent: float


def phases_of(kind: Literal["shadow", "canary"], *, shadow_percent: float, canary_percent: float) -> list[Phase]:
    """A shadow rollout is one shadow phase; a canary rollout shadows first, then answers a share."""
    shadow = Phase("shadow", shadow_percent)
    return [shadow] if kind == "shadow" else [shadow, Phase("canary", canary_percent)]


def stage_phases(settings: StageSettings) -> list[Phase]:
    """The stage's rollout: shadow alone when `retrain.rollout` says shadow, else shadow then canary
    (also for `immediate`, whose retrain runs promote at once: `slipway rollout` still rolls out)."""
    rollout = settings.rollout
    kind: Literal["shadow", "canary"] = "shadow" if settings.retrain.rollout == "shadow" else "canary"
    return phases_of(kind, shadow_percent=rollout.shadow_percent, canary_percent=rollout.canary_percent)


def _task(function: str, parameters: dict[str, Any], result_path: str, next_state: str, timeout: int) -> dict[str, Any]:
    return lambda_task(
        function, parameters, result_path, next_state, timeout=timeout, retry=retry_transient(3, 2), on_error="Abort"
    )


def _finish(steps: RolloutSteps, action: str, timeout: int) -> dict[str, Any]:
    parameters = {"candidate.$": "$.candidate", "action": action, "reason.$": "$.reason",
                  "run_id.$": "$$.Execution.Name"}  # fmt: skip
    return _task(steps.finish, parameters, "$.outcome", "NotifyOutcome", timeout)


def rollout_definition(steps: RolloutSteps, phases: list[Phase], *, step_timeout_seconds: int) -> dict[str, Any]:
    """The state machine's definition as a JSON-ready dict."""
    if not phases:
        raise ValueError("a rollout needs at least one phase")
    states: dict[str, Any] = {}
    for index, phase in enumerate(phases):
        name = phase.mode.capitalize()
        following = f"Start{phases[index + 1].mode.capitalize()}" if index + 1 < len(phases) else "Promote"
        started, verdict = f"$.started_{phase.mode}", f"$.verdict_{phase.mode}"
        states[f"Start{name}"] = _task(
            steps.start,
            {"candidate.$": "$.candidate", "mode": phase.mode, "percent": phase.percent, "reason.$": "$.reason"},
            started,
            f"Bake{name}",
            step_timeout_seconds,
        )
        states[f"Bake{name}"] = {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": f"Settle{name}"}
        states[f"Settle{name}"] = {"Type": "Wait", "SecondsPath": "$.settle_seconds", "Next": f"Judge{name}"}
        states[f"Judge{name}"] = _task(
            steps.judge,
            {
                "candidate.$": "$.candidate",
                "mode": phase.mode,
                "started_at.$": f"{started}.started_at",
                "settle_seconds.$": "$.settle_seconds",
                "run_id.$": "$$.Execution.Name",
            },
            verdict,
            f"Passed{name}",
            step_timeout_seconds,
        )
        states[f"Passed{name}"] = {
            "Type": "Choice",
            "Choices": [{"Variable": f"{verdict}.decision", "StringEquals": "promote", "Next": following}],
            "Default": "Refuse",
        }
    notify = partial(notify_task, steps.notify_topic, timeout=step_timeout_seconds, retry=retry_transient(3, 2))
    states |= {
        "Promote": _finish(steps, "promote", step_timeout_seconds),
        "Refuse": _finish(steps, "refuse", step_timeout_seconds),
        "NotifyOutcome": {**notify("Slipway rollout finished", "States.JsonToString($)"), "End": True},
        "Abort": {
            **_finish(steps, "abort", step_timeout_seconds),
            "ResultPath": "$.aborted",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.abort_error", "Next": "NotifyFailure"}],
            "Next": "NotifyFailure",
        },
        "NotifyFailure": {
            **notify("Slipway rollout failed; the live model is unchanged", "States.JsonToString($)"),
            "Next": FAILED_STATE,
        },
        FAILED_STATE: {"Type": "Fail", "Error": "RolloutFailed", "Cause": "a step failed; see NotifyFailure"},
    }
    first = f"Start{phases[0].mode.capitalize()}"
    return {
        "Comment": "Slipway rollout: " + " then ".join(f"{p.mode} {p.percent:g} %" for p in phases) + ", then promote",
        "StartAt": first,
        "States": states,
    }
