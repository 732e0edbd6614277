"""A rollout through the handler: the canary answers its share, the shadow only scores, and live answers stay intact."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from functions.core import layout
from functions.core.capture import CAPTURE_MARKER, CaptureRecord
from functions.core.registry import Registry
from functions.training.train import Bundle, train_bundle
from slipway.local.recipes import variant
from tests.conftest import Invoke, example_row


@pytest.fixture(scope="module")
def other_bundle() -> Bundle:
    """The example recipe under another seed: another version, same features, slightly other answers."""
    return train_bundle(variant(seed_offset=1))


@pytest.fixture
def candidate(registry: Registry, live_bundle: Bundle, other_bundle: Bundle) -> Bundle:
    assert other_bundle.version != live_bundle.version
    registry.register(other_bundle.manifest, other_bundle.onnx_bytes)
    return other_bundle


def _captured(text: str) -> list[CaptureRecord]:
    return [CaptureRecord.model_validate_json(line) for line in text.splitlines() if CAPTURE_MARKER in line]


def test_a_canary_answers_its_share_and_every_answer_names_its_version(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke]
) -> None:
    registry.start_rollout(candidate.version, "canary", 30, "test")
    invoke = invoke_factory()
    row = example_row(live_bundle)
    versions = [invoke("POST", "/predict", {"instances": [row]})[1]["model_version"] for _ in range(1000)]
    assert set(versions) == {live_bundle.version, candidate.version}
    share = versions.count(candidate.version) / len(versions)
    assert 0.25 < share < 0.35, share

    sticky = {
        invoke("POST", "/predict", {"instances": [row]}, headers={"X-Slipway-Key": "caller-7"})[1]["model_version"]
        for _ in range(50)
    }
    assert len(sticky) == 1, "a caller's key keeps it on one version"


def test_the_protocols_versions_are_the_live_one_and_the_canarys_and_each_answers_alone(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke]
) -> None:
    registry.start_rollout(candidate.version, "canary", 50, "test")
    invoke = invoke_factory()
    name = live_bundle.manifest.lineage.recipe.rsplit(".", 1)[-1]
    status, metadata = invoke("GET", f"/v2/models/{name}/versions/{candidate.version}")
    assert status == 200 and metadata["versions"] == [live_bundle.version, candidate.version]
    tensors = [{"name": n, "datatype": "FP64", "shape": [1], "data": [v]} for n, v in example_row(live_bundle).items()]
    for version in (live_bundle.version, candidate.version):
        assert invoke("GET", f"/v2/models/{name}/versions/{version}/ready") == (200, {"ready": True})
        answered = {
            invoke("POST", f"/v2/models/{name}/versions/{version}/infer", {"inputs": tensors})[1]["model_version"]
            for _ in range(20)
        }
        assert answered == {version}, "a version named in the path answers alone, whatever the split"

    registry.start_rollout(candidate.version, "shadow", 100, "test")
    invoke = invoke_factory()
    status, body = invoke("GET", f"/v2/models/{name}/versions/{candidate.version}/ready")
    assert status == 404 and live_bundle.version in body["error"], "a shadow's candidate answers no one"


def test_a_shadow_leaves_every_answer_to_live_and_captures_both(
    registry: Registry,
    live_bundle: Bundle,
    candidate: Bundle,
    invoke_factory: Callable[[], Invoke],
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.start_rollout(candidate.version, "shadow", 100, "test")
    invoke = invoke_factory()
    capsys.readouterr()
    rows = [example_row(live_bundle, i) for i in range(5)]
    status, body = invoke("POST", "/predict", {"instances": rows})
    assert status == 200 and body["model_version"] == live_bundle.version
    [record] = _captured(capsys.readouterr().out)
    assert record.model_version == live_bundle.version and record.model_role == "live"
    assert record.shadow is not None and record.shadow.version == candidate.version and record.shadow.error is None
    assert record.shadow.probabilities is not None and record.probabilities is not None
    assert record.shadow.probabilities != record.probabilities, "the candidate's own answers"
    assert record.latency_ms is not None and record.shadow.latency_ms > 0


def test_model_and_health_show_the_candidate(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke]
) -> None:
    registry.start_rollout(candidate.version, "canary", 10, "test")
    invoke = invoke_factory()
    status, health = invoke("GET", "/health")
    assert status == 200 and health["status"] == "ready" and health["model_version"] == live_bundle.version
    assert health["candidate"]["version"] == candidate.version and health["candidate"]["loaded"] is True
    info = invoke("GET", "/model")[1]
    assert info["version"] == live_bundle.version
    assert (info["candidate"]["mode"], info["candidate"]["percent"]) == ("canary", 10)
    assert info["candidate"]["metrics"] == candidate.manifest.metrics


def test_a_candidate_that_cannot_be_loaded_changes_no_answer(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke], names: Any
) -> None:
    registry.start_rollout(candidate.version, "canary", 100, "test")
    boto3.client("s3").put_object(
        Bucket=names.artifacts_bucket, Key=layout.model_key(candidate.version), Body=b"not a graph"
    )
    invoke = invoke_factory()
    for _ in range(20):
        status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
        assert status == 200 and body["model_version"] == live_bundle.version
        assert body["predictions"][0]["fallback"] is None
    health = invoke("GET", "/health")[1]
    assert health["status"] == "ready", "a broken candidate does not degrade the service"
    assert health["candidate"]["loaded"] is False
    assert (
        health["candidate"]["reason"]
        == f"candidate {candidate.version} cannot be loaded (unusable_bundle); live answers alone"
    )


def test_a_canary_that_fails_to_score_is_answered_by_live(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    registry.start_rollout(candidate.version, "canary", 100, "test")
    invoke = invoke_factory()
    import functions.inference.handler as module

    serving = module.live_model.current()
    assert serving.candidate is not None

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("graph failed")

    monkeypatch.setattr(serving.candidate.predictor, "score", broken)
    capsys.readouterr()
    status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert status == 200 and body["model_version"] == live_bundle.version
    assert body["predictions"][0]["fallback"] is None
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CandidateErrors"' in line]
    assert [doc["CandidateErrors"] for doc in emitted] == [[1.0]] and emitted[0]["model_role"] == "live"


def test_the_async_worker_and_batch_scoring_leave_the_candidate_unloaded(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, names: Any
) -> None:
    """They answer with the live model alone: loading the candidate there would only cost memory."""
    registry.start_rollout(candidate.version, "canary", 50, "test")
    from functions.inference.config import WorkerConfig
    from functions.inference.live_model import live_model_of

    config = WorkerConfig(
        artifacts_bucket=names.artifacts_bucket, live_pointer_parameter=names.live_pointer_parameter,
        pointer_refresh_seconds=30,
    )  # fmt: skip
    serving = live_model_of(config).current()
    assert serving.version == live_bundle.version and serving.candidate is None and serving.candidate_problem is None


def test_a_sticky_key_is_the_caller_s_own(
    registry: Registry, live_bundle: Bundle, candidate: Bundle, invoke_factory: Callable[[], Invoke]
) -> None:
    """Two callers sending the same X-Slipway-Key value are bucketed apart: one cannot steer the other's traffic."""
    from functions.core.rollout import bucket
    from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event

    registry.start_rollout(candidate.version, "canary", 50, "test")
    invoke_factory()
    handler = sys.modules["functions.inference.handler"]
    # A header value that puts alice on the candidate's side and bob on live's (found, not assumed).
    value = next(v for v in (f"k{i}" for i in range(1000)) if bucket(f"key:alice|{v}") < 50 <= bucket(f"key:bob|{v}"))
    versions = {}
    for caller in ("alice", "bob"):
        body = json.dumps({"instances": [example_row(live_bundle)]})
        event = proxy_event(HttpRequest("POST", "/predict", body=body, headers={"X-Slipway-Key": value}))
        event["requestContext"]["identity"]["apiKeyId"] = caller
        versions[caller] = json.loads(handler.lambda_handler(event, FakeLambdaContext())["body"])["model_version"]
    assert versions == {"alice": candidate.version, "bob": live_bundle.version}
