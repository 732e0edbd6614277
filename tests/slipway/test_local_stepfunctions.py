"""The local Step Functions runner: moto executes a definition whose tasks call registered Python handlers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from slipway.local.stepfunctions import LocalStepFunctions

REGION = "us-east-1"


class Flaky(Exception):
    """A transient failure the definition retries."""


@pytest.fixture
def runner(aws: None) -> Iterator[LocalStepFunctions]:
    with closing(LocalStepFunctions(region=REGION)) as local:
        yield local


def _definition(double: str, check: str) -> dict[str, Any]:
    return {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": double, "Payload.$": "$"},
                "ResultSelector": {"value.$": "$.Payload.value"},
                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "Next": "Check",
            },
            "Check": {
                "Type": "Task",
                "Resource": check,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "Next": "Big?",
            },
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.value", "NumericGreaterThan": 10, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Succeed"},
            "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "value <= 10"},
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_a_definition_runs_the_registered_handlers_with_retry_choice_and_catch(runner: LocalStepFunctions) -> None:
    calls: list[int] = []

    def double(event: dict[str, Any], _context: object) -> dict[str, int]:
        calls.append(event["value"])
        if len(calls) == 1:
            raise Flaky("first call fails")
        return {"value": event["value"] * 2}

    def check(event: dict[str, Any], _context: object) -> dict[str, int]:
        if event["value"] < 0:
            raise ValueError("negative")
        return event

    machine = runner.create_state_machine(
        "t", _definition(runner.register("double", double), runner.register("check", check))
    )
    big = runner.run(machine, {"value": 6})
    assert big.succeeded and big.output == {"value": 12}
    assert calls == [6, 6], "the Flaky error was retried once"

    small = runner.run(machine, {"value": 2})
    assert small.status == "FAILED" and small.error == "TooSmall"

    caught = runner.run(machine, {"value": -3})
    assert caught.succeeded
    assert caught.output["error"]["Error"] == "ValueError"
    assert "negative" in caught.output["error"]["Cause"]
