"""The rollout state machine under moto with the real step handlers and the real serving code sending traffic.

While an execution bakes, a traffic thread serves requests through the live model (which
follows the pointer as a container does) and lands their capture records in S3 as the
capture pipeline would. A good candidate goes through shadow and canary to promotion; one
trained on shuffled labels, or one that cannot be loaded, is refused with live untouched.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import closing, redirect_stdout
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from functions.adapters import factory
from functions.core import layout
from functions.core.capture import capture_key
from functions.core.registry import Registry
from functions.inference import service
from functions.inference.capture import Capture
from functions.inference.live_model import LiveModel
from functions.training.train import Bundle, load_recipe, load_table
from slipway.local.rollout import LocalRollout, topic
from slipway.local.stepfunctions import ExecutionResult
from stage.names import ResourceNames
from stage.settings import load_settings
from tests.background import BackgroundLoop

BAKE_SECONDS = 3
POLICY = {"min_rows": 50, "min_labelled_rows": 10_000, "max_latency_ratio": 50}


@pytest.fixture
def rollout(
    aws: None, names: ResourceNames, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalRollout]:
    with closing(LocalRollout(load_settings("dev"), names, topic(names))) as local:
        monkeypatch.setenv("ROLLOUT_POLICY", json.dumps(POLICY))
        from functions.rollout import handler

        handler.reset()
        yield local


class Traffic(BackgroundLoop):
    """Five-row requests through the live model, their capture records put in S3 every tenth of a second."""

    def __init__(self, names: ResourceNames) -> None:
        super().__init__(join_seconds=10)
        self.names = names
        self.live = LiveModel(
            store=factory.model_store(names.artifacts_bucket),
            pointer=factory.pointer_store(names.live_pointer_parameter),
            refresh_seconds=0,
            load_candidate=True,
        )
        columns, _ = load_table(load_recipe())
        self.rows = [{n: float(v[i]) for n, v in columns.items()} for i in range(len(next(iter(columns.values()))))]
        self.capture = Capture(sampling_rate=0.0)
        self.answers: list[str | None] = []

    def loop(self) -> None:
        s3, batch = boto3.client("s3"), 0
        while not self.stopped.is_set():
            out = io.StringIO()
            for request in range(10):
                serving = self.live.current()
                start = (batch * 50 + request * 5) % (len(self.rows) - 5)
                rows = self.rows[start : start + 5]
                outcome = service.predict(serving, rows)
                self.answers.append(outcome.version)
                assert outcome.predictor is not None
                with redirect_stdout(out):
                    self.capture.record(
                        request_id=f"b{batch}-{request}", manifest=outcome.predictor.manifest,
                        model_version=outcome.version, rows=rows, batch=outcome.batch,
                        predictions=outcome.predictions, role=outcome.role, latency_ms=1.0, shadow=outcome.shadow,
                        candidate_error=outcome.candidate_error, always=serving.candidate is not None,
                    )  # fmt: skip
            if out.getvalue():
                key = capture_key(datetime.now(UTC), f"traffic-{batch}")
                s3.put_object(Bucket=self.names.artifacts_bucket, Key=key, Body=out.getvalue().encode())
            batch += 1
            self.stopped.wait(0.1)


def _roll_out(
    rollout: LocalRollout, registry: Registry, names: ResourceNames, candidate: Bundle
) -> tuple[ExecutionResult, Traffic]:
    """Register `candidate` and run its rollout to the end under traffic."""
    registry.register(candidate.manifest, candidate.onnx_bytes)
    with Traffic(names) as traffic:
        started = rollout.start(candidate.version, "retrained", bake_seconds=BAKE_SECONDS, settle_seconds=1)
        return rollout.wait(started), traffic


def _record(names: ResourceNames, key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=key)["Body"].read()
    return dict(json.loads(body))


def test_a_good_candidate_goes_through_shadow_and_canary_to_promotion(
    rollout: LocalRollout, registry: Registry, live_bundle: Bundle, good: Bundle, names: ResourceNames
) -> None:
    result, traffic = _roll_out(rollout, registry, names, good)
    assert result.succeeded, (result.error, result.cause)
    assert rollout.steps_run(result) == [
        "StartShadow", "BakeShadow", "SettleShadow", "JudgeShadow", "PassedShadow",
        "StartCanary", "BakeCanary", "SettleCanary", "JudgeCanary", "PassedCanary", "Promote", "NotifyOutcome",
    ]  # fmt: skip
    live = registry.live()
    assert live.version == good.version and live.previous == live_bundle.version and live.rollout is None
    run = result.arn.rsplit(":", 1)[1]
    shadow = _record(names, f"{layout.ROLLOUT_PREFIX}{run}/shadow.json")
    assert shadow["decision"] == "promote" and shadow["figures"]["shadow"]["rows"] >= 50
    assert shadow["figures"]["shadow"]["label_agreement"] > 0.9
    canary = _record(names, f"{layout.ROLLOUT_PREFIX}{run}/canary.json")
    assert canary["decision"] == "promote" and canary["figures"]["candidate"]["rows"] >= 50
    assert _record(names, f"{layout.ROLLOUT_PREFIX}{run}/outcome.json")["action"] == "promote"
    assert good.version in traffic.answers and live_bundle.version in traffic.answers


def test_a_candidate_trained_on_shuffled_labels_is_refused_and_live_stays(
    rollout: LocalRollout, registry: Registry, live_bundle: Bundle, bad: Bundle, names: ResourceNames
) -> None:
    result, traffic = _roll_out(rollout, registry, names, bad)
    assert result.succeeded, (result.error, result.cause)
    assert rollout.steps_run(result)[-3:] == ["PassedShadow", "Refuse", "NotifyOutcome"]
    assert registry.live().version == live_bundle.version and registry.live().rollout is None
    assert set(traffic.answers) == {live_bundle.version}, "a shadow never answers"
    run = result.arn.rsplit(":", 1)[1]
    shadow = _record(names, f"{layout.ROLLOUT_PREFIX}{run}/shadow.json")
    assert shadow["decision"] == "refuse" and any("labels differ" in reason for reason in shadow["reasons"])


def test_a_candidate_whose_bundle_no_longer_matches_its_hash_never_starts(
    rollout: LocalRollout, registry: Registry, live_bundle: Bundle, good: Bundle, names: ResourceNames
) -> None:
    registry.register(good.manifest, good.onnx_bytes)
    # Overwritten behind the registry's back (the bucket policy refuses it in AWS): its hash no longer matches.
    boto3.client("s3").put_object(Bucket=names.artifacts_bucket, Key=layout.model_key(good.version), Body=b"broken")
    with Traffic(names) as traffic:
        result = rollout.wait(rollout.start(good.version, "retrained", bake_seconds=BAKE_SECONDS, settle_seconds=1))
    assert (result.status, result.error) == ("FAILED", "RolloutFailed"), result
    assert "NotifyFailure" in rollout.steps_run(result)
    assert registry.live().version == live_bundle.version and registry.live().rollout is None
    assert set(traffic.answers) == {live_bundle.version}
