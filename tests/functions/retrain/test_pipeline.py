"""The retrain state machine under moto with the real step handlers: success, gate refused, failure."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pandas as pd
import pytest

import model.recipe
from functions.adapters import factory
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.registry import Registry
from functions.training.train import Bundle
from slipway.local.retrain import LocalRetrain
from stage.names import ResourceNames
from stage.settings import load_settings


@pytest.fixture
def pipeline(aws: None, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRetrain]:
    monkeypatch.delenv("RETRAIN_POLICY", raising=False)
    with closing(LocalRetrain(load_settings("dev"), names)) as local:
        yield local


def _decisions(names: ResourceNames) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json") for d in S3RetrainStore(factory.client("s3"), names.artifacts_bucket).decisions()]


def test_first_run_trains_gates_registers_and_promotes(pipeline: LocalRetrain, registry: Registry) -> None:
    result = pipeline.run("first")
    assert result.succeeded, result.cause
    live = registry.live()
    assert live.version == result.output["decision"]["candidate_version"]
    assert live.action == "promote" and "first" in live.reason
    assert pipeline.steps_run(result) == [
        "Prepare", "Train", "Evaluate", "Gate", "Register", "Promote", "NotifyOutcome",
    ]  # fmt: skip
    [decision] = _decisions(pipeline.names)
    assert decision["verdict"] == "promote" and float(str(decision["candidate"]["score"])) > 0.9
    data = result.output["data"]
    assert data["rows"] == 569 and data["labelled_rows"] == 0 and data["objects"] == data["objects_read"] == 1


def test_rerun_on_unchanged_data_creates_no_version_and_no_promotion(
    pipeline: LocalRetrain, registry: Registry, live_bundle: Bundle
) -> None:
    before = registry.live()
    result = pipeline.run("again")
    assert result.succeeded, result.cause
    assert result.output["decision"]["verdict"] == "unchanged"
    assert result.output["decision"]["candidate_version"] == live_bundle.version, "same data + seed, same version"
    assert registry.live() == before
    assert registry.store.list_versions() == [live_bundle.version]
    assert "Register" not in pipeline.steps_run(result)


def test_gate_refuses_below_the_floor_and_leaves_live_untouched(
    pipeline: LocalRetrain, registry: Registry, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changed data (the recipe's load_data() lost a row) makes a new candidate; a floor above any score refuses it.
    features, target = model.recipe.load_data()
    monkeypatch.setattr(model.recipe, "load_data", lambda: (features.iloc[1:], target.iloc[1:]))
    policy = json.loads(os.environ["RETRAIN_POLICY"])
    monkeypatch.setenv("RETRAIN_POLICY", json.dumps({**policy, "gate": {"floor": 1.01}}))
    from functions.retrain.config import config

    config.cache_clear()
    before = registry.live()
    result = pipeline.run("floor")
    assert result.succeeded, result.cause
    decision = result.output["decision"]
    assert decision["verdict"] == "refuse" and decision["candidate_version"] != live_bundle.version
    assert any("floor" in reason for reason in decision["reasons"])
    assert registry.live() == before
    assert decision["candidate_version"] not in registry.store.list_versions()
    [stored] = _decisions(pipeline.names)
    assert stored["verdict"] == "refuse" and stored["live"]["score"] is not None and stored["floor"] == 1.01


def test_a_failing_step_is_caught_notified_and_leaves_live_untouched(
    pipeline: LocalRetrain, registry: Registry, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # load_data() now gives a column of dates: no feature type takes them, so Prepare stops, naming it.
    features, target = model.recipe.load_data()
    dated = features.assign(seen=pd.Timestamp("2026-12-01"))
    monkeypatch.setattr(model.recipe, "load_data", lambda: (dated, target))
    before = registry.live()
    result = pipeline.run("broken data")
    assert result.status == "FAILED" and result.error == "RetrainFailed"
    steps = pipeline.steps_run(result)
    assert steps == ["Prepare", "NotifyFailure", "RetrainFailed"]
    assert registry.live() == before
    history = pipeline.runner.history(result.arn)
    failed = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert "DataError" in json.dumps(failed, default=str) and "'seen'" in json.dumps(failed, default=str)
    # NotifyFailure sends the message that names the column to the alarm topic.
    [notified] = [
        e["taskScheduledEventDetails"]["parameters"]
        for e in history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "sns"
    ]
    assert "Slipway retrain failed" in notified and "DataError" in notified and "seen" in notified, notified


def test_the_drift_event_and_the_schedule_start_the_state_machine(
    pipeline: LocalRetrain, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.retrain.config import config
    from functions.retrain.control import drift_trigger_handler
    from slipway.local.lambda_runtime import FakeLambdaContext

    config.cache_clear()
    event = {
        "source": "slipway.dev",
        "detail-type": "DriftDetected",
        "detail": {
            "model_version": "none", "window_start": "2025-06-01T00:00:00Z", "window_end": "2025-06-01T01:00:00Z",
            "rows": 10, "drift_share": 0.5, "drifted_features": ["mean_radius"], "report_key": "reports/r.json",
        },
    }  # fmt: skip
    first = drift_trigger_handler(event, FakeLambdaContext())
    second = drift_trigger_handler(event, FakeLambdaContext())
    assert first["started"] and not second["started"], "the cool-down holds"
    result = pipeline.runner.wait(first["execution_arn"])
    assert result.succeeded and registry.live().version == result.output["decision"]["candidate_version"]
    # The schedule's target input, as EventBridge Scheduler sends it.
    scheduled = pipeline.runner.run(pipeline.state_machine_arn, {"reason": "schedule"})
    assert scheduled.succeeded and scheduled.output["decision"]["verdict"] == "unchanged"


def test_a_scheduled_retrain_after_the_data_grew_leaves_the_newer_model_live(
    pipeline: LocalRetrain, registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example is live; load_data() grows by 400 rows; `slipway train --promote`; then the weekly run."""
    from slipway.cli import main

    assert main(["train", "--promote"]) == 0
    first = registry.live().version
    features, target = model.recipe.load_data()
    grown = (pd.concat([features, features.iloc[:400] * 1.01], ignore_index=True),
             pd.concat([target, target.iloc[:400]], ignore_index=True))  # fmt: skip
    monkeypatch.setattr(model.recipe, "load_data", lambda: grown)
    assert main(["train", "--promote"]) == 0
    newer = registry.live().version
    assert newer != first and "data: 969 rows of 1 object(s)" in capsys.readouterr().out

    assert main(["retrain", "--reason", "weekly"]) == 0

    out = capsys.readouterr().out
    assert "data: 969 rows of 1 source object(s), 0 read this run" in out, "the run reads the user's data as it is now"
    assert "gate: unchanged" in out and registry.live().version == newer


def test_manual_promotion_registers_the_candidate_and_leaves_live_to_a_person(
    aws: None, names: ResourceNames, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETRAIN_POLICY", raising=False)
    settings = load_settings("dev")
    settings = settings.model_copy(update={"retrain": settings.retrain.model_copy(update={"rollout": "manual"})})
    before = registry.live()
    with closing(LocalRetrain(settings, names)) as local:
        result = local.run("needs approval")
    assert result.succeeded, result.cause
    assert local.steps_run(result) == ["Prepare", "Train", "Evaluate", "Gate", "Register", "RequestApproval"]
    candidate = result.output["decision"]["candidate_version"]
    assert candidate in registry.store.list_versions() and registry.live() == before  # registered, not live
    assert registry.promote(candidate, "approved by a person").version == candidate
