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


def _bad_recipe(tmp_path: Any, monkeypatch: Any) -> str:
    """A recipe file with a misspelt build, a wrong TASK and a misspelt optional name."""
    (tmp_path / "tmp_bad_recipe.py").write_text(
        "SEED = 1\nTASK = 'ranking'\nMETRIC = 'accuracy'\nSEGMENT = ['species']\n\n\n"
        "def load_data():\n    return None\n\n\ndef biuld(seed):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tmp_bad_recipe"


def test_check_lists_every_problem_of_a_bad_recipe_and_fails(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    from slipway.cli import EXIT_FAILED, main

    assert main(["check", "--recipe", _bad_recipe(tmp_path, monkeypatch)]) == EXIT_FAILED

    err = capsys.readouterr().err
    assert "slipway: recipe tmp_bad_recipe does not meet the recipe contract" in err
    assert '  - TASK: expected one of "classification", "regression"; found \'ranking\' (str)' in err
    assert "  - build: missing; a recipe must set it: function `build(seed)`" in err
    assert "(it sets biuld: a misspelling?)" in err
    assert "  - SEGMENT: not a name Slipway reads; did you mean SEGMENTS?" in err


def test_check_takes_the_stage_recipe_setting_and_prints_what_it_sets(monkeypatch: Any, capsys: Any) -> None:
    import stage.settings
    from slipway.cli import main

    dev = stage.settings.load_settings("dev")
    monkeypatch.setattr(
        stage.settings,
        "load_settings",
        lambda name: stage.settings.with_overrides(dev, {"recipe": "model.examples.penguins"}),
    )

    assert main(["check"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "recipe model.examples.penguins meets the recipe contract (classification, METRIC roc_auc, SEED 7)"
    assert "  SEGMENTS: ['species']" in out
    assert "  PARITY_TOLERANCE: 0.0001 (default)" in out


def test_check_names_a_recipe_module_that_does_not_exist(capsys: Any) -> None:
    from slipway.cli import EXIT_FAILED, main

    assert main(["check", "--recipe", "model.no_such_recipe"]) == EXIT_FAILED
    assert "slipway: no recipe module 'model.no_such_recipe'" in capsys.readouterr().err


def test_check_with_data_refuses_a_name_the_data_lacks_without_fitting(
    tmp_path: Any, monkeypatch: Any, capsys: Any
) -> None:
    from slipway.cli import EXIT_FAILED, main

    (tmp_path / "tmp_private_recipe.py").write_text(
        "from model.recipe import METRIC, SEED, TASK, build, load_data\n\nCAPTURE_EXCLUDE = ['postcode']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert main(["check", "--recipe", "tmp_private_recipe"]) == 0, "the contract alone cannot know the columns"
    assert main(["check", "--data", "--recipe", "tmp_private_recipe"]) == EXIT_FAILED
    assert "CAPTURE_EXCLUDE names features the data does not have: ['postcode']" in capsys.readouterr().err

    assert main(["check", "--data"]) == 0
    assert "data: 569 rows, 30 features (5 required)" in capsys.readouterr().out
