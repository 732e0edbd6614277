"""The retrain pipeline in the template: state machine (retries, catches, timeouts, logs, tracing), triggers, roles."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template
from synth_support import TOKEN, state_machine_definition

from functions.retrain.config import RetrainPolicy
from stage.settings import StageSettings
from stage.workflows.retrain import RetrainSteps, retrain_definition


def _definition(template: Template) -> dict[str, Any]:
    return state_machine_definition(template, "slipway-dev-retrain")


def test_every_task_retries_transient_errors_with_backoff_has_a_timeout_and_is_caught(
    templates: dict[str, Template],
) -> None:
    definition = _definition(templates["dev"])
    assert definition["TimeoutSeconds"] > 0
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}
    assert set(tasks) >= {"Prepare", "Train", "Evaluate", "Register", "Promote", "NotifyOutcome", "NotifyFailure"}
    for name, state in tasks.items():
        assert state["TimeoutSeconds"] > 0, name
        [retry] = state["Retry"]
        assert retry["BackoffRate"] > 1 and "Lambda.TooManyRequestsException" in retry["ErrorEquals"], name
        assert "States.ALL" not in retry["ErrorEquals"], f"{name} must not retry logic errors"
        if name != "NotifyFailure":
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}]
    assert definition["States"]["NotifyFailure"]["Next"] == "RetrainFailed"
    assert definition["States"]["Gate"]["Default"] == "NotifyOutcome", "a refused candidate is never registered"


def test_schedule_and_drift_rule_start_the_pipeline(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    template = templates["dev"]
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": settings["dev"].retrain.schedule,
            "Target": Match.object_like({"Arn": {"Ref": Match.string_like_regexp("RetrainStateMachine")}}),
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["slipway.dev"], "detail-type": ["DriftDetected"]}},
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": Match.object_like({"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}})},
    )
    [rollback] = [
        rule["Properties"]["EventPattern"]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if rule["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]
    ]
    watched = {alarm["Fn::GetAtt"][0] for alarm in rollback["resources"]}
    assert {next(a for a in watched if a.startswith(p)) for p in _ROLLBACK_ALARMS} == watched, watched
    (trigger,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"FunctionName": "slipway-dev-retrain-trigger"}}
    ).values()
    policy = RetrainPolicy.model_validate_json(trigger["Properties"]["Environment"]["Variables"]["RETRAIN_POLICY"])
    assert policy.cooldown_minutes == 360


# A promotion followed by one of these alarms is rolled back.
_ROLLBACK_ALARMS = ("ObservabilityFallbackRate", "ObservabilityApi5xxRate", "ObservabilityLastGoodModelAnswering")


def _policy_of(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = policy["Properties"]["Roles"]
        if any(r.get("Ref", "").startswith(role_prefix) for r in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_step_roles_are_least_privilege(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    train = _policy_of(template, "RetrainTrainRole")
    actions = {a for s in train for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "ssm:PutParameter" not in actions, "training never moves the live pointer"
    assert "s3:PutObject" in actions
    promote = _policy_of(template, "RetrainPromoteRole")
    promote_actions = {a for s in promote for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "ssm:PutParameter" in promote_actions and "s3:PutObject" not in promote_actions
    [move] = [s for s in promote if s.get("Sid") == "MoveLivePointer"]
    [lock] = [s for s in promote if s.get("Sid") == "LockLivePointer"]
    pointer_arn = move["Resource"]["Fn::Join"][1]
    assert lock["Resource"]["Fn::Join"][1] == [*pointer_arn, "-lock"], "the lock is the pointer's sibling parameter"
    assert sorted(lock["Action"]) == ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:PutParameter"]
    machine = _policy_of(template, "RetrainStateMachineRole")
    invoke = [s for s in machine if s.get("Sid") == "InvokeRetrainSteps"]
    assert invoke and len(invoke[0]["Resource"]) == 5
    for statement in train + promote + machine:
        action = statement["Action"]
        assert "*" not in (action if isinstance(action, str) else "".join(action)), statement


def test_the_deployed_definition_is_the_one_the_local_stack_runs(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    """CDK's serialisation drops what JSON cannot carry through it (a `None` vanishes): compare what AWS gets."""
    retrain = settings["dev"].retrain
    local = retrain_definition(
        RetrainSteps(prepare=TOKEN, train=TOKEN, evaluate=TOKEN, register=TOKEN, promote=TOKEN, notify_topic=TOKEN),
        train_timeout_seconds=retrain.train_timeout_seconds,
        step_timeout_seconds=retrain.step_timeout_seconds,
    )
    assert _definition(templates["dev"]) == json.loads(json.dumps(local))


def test_notifications_keep_the_runs_output(templates: dict[str, Template]) -> None:
    """The SNS publish result must not replace the run's output: `slipway retrain` reads $.decision from it."""
    states = _definition(templates["dev"])["States"]
    for name in ("NotifyOutcome", "NotifyFailure"):
        result_path = states[name].get("ResultPath", "$")
        assert result_path not in ("$", None) and result_path.startswith("$."), (name, result_path)
        assert result_path not in {"$.decision", "$.data", "$.candidate", "$.error"}, (name, result_path)


def test_the_training_package_s_functions_have_room_in_tmp_for_their_unpacked_dependencies(
    templates: dict[str, Template],
) -> None:
    from infra.retrain import STEP_HANDLERS, TRAINING_EPHEMERAL_STORAGE_MB

    for template in templates.values():
        functions = template.find_resources("AWS::Lambda::Function")
        handlers = {r["Properties"]["Handler"]: r["Properties"] for r in functions.values()}
        for handler in STEP_HANDLERS.values():
            assert handlers[handler]["EphemeralStorage"] == {"Size": TRAINING_EPHEMERAL_STORAGE_MB}, handler
        others = [p for h, p in handlers.items() if h not in STEP_HANDLERS.values()]
        assert others and all("EphemeralStorage" not in p for p in others)


def test_manual_promotion_registers_the_candidate_and_asks_a_person() -> None:
    steps = RetrainSteps(
        prepare=TOKEN, train=TOKEN, evaluate=TOKEN, register=TOKEN, promote=TOKEN, notify_topic=TOKEN,
        manual_promotion=True,
    )  # fmt: skip
    states = retrain_definition(steps, train_timeout_seconds=900, step_timeout_seconds=300)["States"]
    assert states["Register"]["Next"] == "RequestApproval"
    approval = states["RequestApproval"]
    assert approval["End"] is True and approval["Resource"] == "arn:aws:states:::sns:publish"
    assert "slipway promote {}" in approval["Parameters"]["Message.$"]
    # Nothing reaches Promote: only a person does (slipway promote).
    assert not any(state.get("Next") == "Promote" for state in states.values())
    assert not any(choice.get("Next") == "Promote" for state in states.values() for choice in state.get("Choices", []))
