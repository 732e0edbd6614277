"""`slipway retrain` names the step that failed and why, from the execution's history."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from slipway.cli import failed_step


class History:
    def __init__(self, events: list[dict[str, Any]] | Exception) -> None:
        self.events = events

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        if isinstance(self.events, Exception):
            raise self.events
        return {"events": self.events}


def test_failed_step_names_the_state_and_the_lambda_error() -> None:
    events = [  # newest first, as reverseOrder=True answers
        {"id": 9, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "RetrainFailed"}},
        {"id": 8, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "NotifyFailure"}},
        {"id": 5, "type": "TaskFailed",
         "taskFailedEventDetails": {"error": "RuntimeError", "cause": "No module named 'orjson'"}},
        {"id": 3, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Prepare"}},
    ]  # fmt: skip
    assert failed_step(History(events), "arn") == "Prepare failed: RuntimeError: No module named 'orjson'"


def test_failed_step_is_none_without_a_failed_task_or_a_history() -> None:
    assert failed_step(History([{"id": 1, "type": "ExecutionStarted"}]), "arn") is None
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetExecutionHistory")
    assert failed_step(History(refused), "arn") is None


def test_state_machine_arns_are_in_the_partition_of_the_region() -> None:
    from slipway.executions import state_machine_arn
    from stage.names import ResourceNames

    def arn(region: str) -> str:
        names = ResourceNames(project="slipway", stage="dev", account="123456789012", region=region)
        return state_machine_arn(names, names.retrain_state_machine)

    assert arn("us-east-1") == "arn:aws:states:us-east-1:123456789012:stateMachine:slipway-dev-retrain"
    assert arn("cn-north-1").startswith("arn:aws-cn:states:cn-north-1:")
    assert arn("us-gov-west-1").startswith("arn:aws-us-gov:states:")


def test_the_api_key_never_goes_on_the_command_line(monkeypatch: Any, capsys: Any) -> None:
    import pytest

    from slipway.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["smoke", "--url", "http://127.0.0.1:9/", "--api-key", "secret"])
    assert refused.value.code == 2 and "unrecognized arguments: --api-key" in capsys.readouterr().err
    # It comes from the stack, or from the environment: here a closed port fails the checks, key or not.
    monkeypatch.setenv("SLIPWAY_API_KEY", "secret")
    assert main(["smoke", "--url", "http://127.0.0.1:9/"]) == 1
