"""The rollout in the template: its state machine (the local stack's definition), and where retrain starts it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template
from synth_support import TOKEN, state_machine_definition

from stage.settings import StageSettings
from stage.workflows.rollout import RolloutSteps, rollout_definition, stage_phases


def _definition(template: Template, name: str) -> dict[str, Any]:
    return state_machine_definition(template, name)


def test_the_deployed_definition_is_the_one_the_local_stack_runs(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in ("dev", "prod"):
        local = rollout_definition(
            RolloutSteps(start=TOKEN, judge=TOKEN, finish=TOKEN, notify_topic=TOKEN),
            stage_phases(settings[stage]),
            step_timeout_seconds=settings[stage].rollout.timeout_seconds,
        )
        assert _definition(templates[stage], f"slipway-{stage}-rollout") == json.loads(json.dumps(local))


def test_shadow_then_canary_then_promote_and_every_task_is_caught(templates: dict[str, Template]) -> None:
    states = _definition(templates["prod"], "slipway-prod-rollout")["States"]
    assert states["PassedShadow"]["Choices"][0]["Next"] == "StartCanary"
    assert states["PassedCanary"]["Choices"][0]["Next"] == "Promote"
    assert states["PassedShadow"]["Default"] == states["PassedCanary"]["Default"] == "Refuse"
    assert (
        states["StartShadow"]["Parameters"]["percent"] == 100 and states["StartCanary"]["Parameters"]["percent"] == 10
    )
    for name, state in states.items():
        if state["Type"] == "Task" and not state["Resource"].startswith("arn:aws:states:::sns"):
            assert state["Retry"] and state["TimeoutSeconds"] > 0, name
            assert state["Catch"][0]["Next"] in ("Abort", "NotifyFailure"), name
    assert states["Abort"]["Parameters"]["action"] == "abort" and states["Abort"]["Next"] == "NotifyFailure"
    assert states["BakeShadow"] == {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "SettleShadow"}


def test_prod_retrain_starts_a_rollout_and_dev_promotes_at_once(templates: dict[str, Template]) -> None:
    prod = _definition(templates["prod"], "slipway-prod-retrain")["States"]
    assert prod["Register"]["Next"] == "StartRollout" and "Promote" not in prod["Register"]["Next"]
    assert prod["StartRollout"]["Next"] == "NotifyOutcome"
    assert prod["StartRollout"]["Parameters"]["version.$"] == "$.decision.candidate_version"
    dev = _definition(templates["dev"], "slipway-dev-retrain")["States"]
    assert dev["Register"]["Next"] == "Promote" and "StartRollout" not in dev
