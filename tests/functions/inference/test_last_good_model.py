"""The last good model keeps serving when the registry moves to a version that cannot be loaded.

Real proxy events through the real handler against moto: a warm container keeps the
version it has, a cold one loads the version the pointer replaced; /health says so,
every stale answer is counted (LastGoodAnswers, which the LastGoodModelAnswering alarm
watches), and plan B answers only when no version at all can be loaded.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from functions.core import layout, telemetry
from functions.core.registry import Registry
from functions.training.train import Bundle
from stage.names import ResourceNames
from tests.conftest import Invoke, example_row


def _variant(registry: Registry, bundle: Bundle, accuracy: float) -> str:
    """Another version over the same graph, registered and promoted."""
    manifest = bundle.manifest.model_copy(update={"metrics": {**bundle.manifest.metrics, "accuracy": accuracy}})
    manifest = manifest.with_version(bundle.onnx_bytes)
    registry.register(manifest, bundle.onnx_bytes)
    registry.promote(manifest.version, "a bad promotion")
    return manifest.version


def _put(names: ResourceNames, key: str, body: bytes | None) -> None:
    s3 = boto3.client("s3")
    if body is None:
        s3.delete_object(Bucket=names.artifacts_bucket, Key=key)
    else:
        s3.put_object(Bucket=names.artifacts_bucket, Key=key, Body=body)


def _missing(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    version = _variant(registry, bundle, 0.5)
    _put(names, layout.model_key(version), None)
    return version


def _corrupt_graph(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    version = _variant(registry, bundle, 0.6)
    _put(names, layout.model_key(version), b"not an onnx graph")
    return version


def _corrupt_manifest(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    version = _variant(registry, bundle, 0.7)
    _put(names, layout.manifest_key(version), b'{"truncated": ')
    return version


def _wrong_hash(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    version = _variant(registry, bundle, 0.8)
    _put(names, layout.model_key(version), bundle.onnx_bytes + b"\x00")
    return version


def _rejected_graph(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    """Correctly hashed and registered, but not a graph ONNX Runtime will run."""
    graph = b"\x08\x07\x12\x04fake" + b"\x00" * 32
    manifest = bundle.manifest.model_copy(update={"metrics": {**bundle.manifest.metrics, "accuracy": 0.9}})
    manifest = manifest.with_version(graph)
    assert registry.register(manifest, graph)
    registry.promote(manifest.version, "a bad promotion")
    return manifest.version


def _colliding_version(names: ResourceNames, registry: Registry, bundle: Bundle) -> str:
    """A bundle whose 16-character version matches but whose full digest is not the one promoted (a forged bundle
    found by a birthday search): simulated by the pointer recording another full digest for the version."""
    version = _variant(registry, bundle, 0.95)
    live = registry.live()
    assert live.digest is not None and live.digest.startswith(version)
    registry.pointer.write(live.model_copy(update={"digest": version + "f" * (64 - len(version))}))
    return version


# Each promotes a new version and leaves it unloadable in one way.
BREAKERS = [_missing, _corrupt_graph, _corrupt_manifest, _wrong_hash, _rejected_graph, _colliding_version]
BREAKER_IDS = ["missing", "corrupt-graph", "corrupt-manifest", "wrong-hash", "rejected-graph", "colliding-version"]


@pytest.fixture(params=BREAKERS, ids=BREAKER_IDS)
def break_live(
    request: pytest.FixtureRequest, live_bundle: Bundle, registry: Registry, names: ResourceNames
) -> Callable[[], str]:
    """Promotes a new version over `live_bundle` and leaves it unloadable, in each of BREAKERS' ways; answers that
    version."""
    return lambda: request.param(names, registry, live_bundle)


def _stale_answers(out: str) -> list[float]:
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line and telemetry.LAST_GOOD_ANSWERS in line:
            value = json.loads(line)[telemetry.LAST_GOOD_ANSWERS]
            found.append(value[0] if isinstance(value, list) else value)
    return found


def _expect_last_good(invoke: Invoke, good: Bundle, broken: str, capsys: Any) -> None:
    capsys.readouterr()
    status, body = invoke("POST", "/predict", {"instances": [example_row(good, 0), example_row(good, 1)]})
    assert status == 200
    assert body["model_version"] == good.version
    assert all(p["fallback"] is None for p in body["predictions"]), "the last good model answers, not plan B"
    assert _stale_answers(capsys.readouterr().out) == [2]
    status, health = invoke("GET", "/health")
    assert status == 200 and health["status"] == "degraded" and health["model_version"] == good.version
    assert re.fullmatch(
        rf"live version {broken} cannot be loaded \((unusable_bundle|bundle_unreachable)\); the last good version "
        "answers",
        health["reason"],
    ), health["reason"]
    assert invoke("GET", "/model")[1]["version"] == good.version


def test_a_warm_container_keeps_its_model_when_the_new_live_one_cannot_load(
    live_bundle: Bundle,
    registry: Registry,
    refreshing_invoke_factory: Callable[[], Invoke],
    break_live: Callable[[], str],
    capsys: Any,
) -> None:
    invoke = refreshing_invoke_factory()
    assert invoke("GET", "/health")[1]["status"] == "ready"

    broken = break_live()

    _expect_last_good(invoke, live_bundle, broken, capsys)
    _expect_last_good(invoke, live_bundle, broken, capsys)  # retried at every refresh, still stale

    registry.rollback("undo the bad promotion")
    assert invoke("GET", "/health")[1] == {
        "status": "ready",
        "model_version": live_bundle.version,
        "reason": None,
        "candidate": None,
    }
    capsys.readouterr()
    invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert _stale_answers(capsys.readouterr().out) == []  # a zero count is not published


def test_a_cold_container_loads_the_previous_version_when_the_live_one_cannot_load(
    live_bundle: Bundle, invoke_factory: Callable[[], Invoke], break_live: Callable[[], str], capsys: Any
) -> None:
    broken = break_live()

    _expect_last_good(invoke_factory(), live_bundle, broken, capsys)


def test_a_repaired_live_version_is_picked_up_at_the_next_refresh(
    live_bundle: Bundle,
    registry: Registry,
    names: ResourceNames,
    refreshing_invoke_factory: Callable[[], Invoke],
) -> None:
    broken = _missing(names, registry, live_bundle)
    invoke = refreshing_invoke_factory()
    assert invoke("GET", "/health")[1]["status"] == "degraded"

    _put(names, layout.model_key(broken), live_bundle.onnx_bytes)

    assert invoke("GET", "/health")[1] == {
        "status": "ready",
        "model_version": broken,
        "reason": None,
        "candidate": None,
    }


def test_plan_b_answers_only_when_no_version_can_be_loaded(
    live_bundle: Bundle, registry: Registry, names: ResourceNames, invoke_factory: Callable[[], Invoke]
) -> None:
    broken = _corrupt_graph(names, registry, live_bundle)
    _put(names, layout.model_key(live_bundle.version), None)  # and the previous one is gone too

    invoke = invoke_factory()
    status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert status == 200
    assert body["model_version"] == broken
    assert body["predictions"][0]["fallback"] == "model_unavailable"
    assert body["predictions"][0]["label"] == live_bundle.manifest.fallback.label
    assert invoke("GET", "/health")[1] == {
        "status": "degraded",
        "model_version": broken,
        "reason": "model_unavailable",
        "candidate": None,
    }


def test_s3_unreachable_during_a_promotion_keeps_the_warm_model(
    live_bundle: Bundle,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    refreshing_invoke_factory: Callable[[], Invoke],
    capsys: Any,
) -> None:
    invoke = refreshing_invoke_factory()
    invoke("GET", "/health")
    newer = _variant(registry, live_bundle, 0.55)
    store = sys.modules["functions.inference.handler"].live_model._store

    def unreachable(version: str) -> Any:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    with monkeypatch.context() as outage:
        outage.setattr(store, "get_bundle", unreachable)
        _expect_last_good(invoke, live_bundle, newer, capsys)
        # A code, not the exception's text (which names the endpoint, and may name buckets, keys and ARNs).
        reason = invoke("GET", "/health")[1]["reason"]
        assert "(bundle_unreachable)" in reason and "amazonaws" not in reason

    assert invoke("GET", "/health")[1]["model_version"] == newer  # S3 is back
