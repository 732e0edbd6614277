"""A container restored from a SnapStart snapshot makes afresh what belongs to one moment or one container.

The handler module's import is the init Lambda snapshots; `restore_from_snapshot` then runs
the hooks it registered with snapshot_restore_py, as Lambda's runtime does in the restored
container. Real proxy events through the real handler against moto.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import pytest

from functions.adapters import factory
from functions.core.registry import Registry
from functions.training.train import Bundle
from slipway.local.lambda_runtime import restore_from_snapshot
from tests.conftest import Invoke, example_row
from tests.functions.core.conftest import variant


def _access_key(client: Any) -> str:
    """The access key `client` signs its requests with."""
    return str(client._request_signer._credentials.access_key)


def _handler() -> Any:
    return sys.modules["functions.inference.handler"]


def test_the_model_is_loaded_before_the_snapshot_and_one_restore_hook_is_registered(
    live_bundle: Bundle, invoke: Invoke
) -> None:
    import snapshot_restore_py

    serving = _handler().live_model.current()
    assert serving.predictor is not None and serving.version == live_bundle.version
    hooks = snapshot_restore_py.get_after_restore()
    assert [(function.__qualname__, args) for function, args, _ in hooks] == [
        ("after_restore", (_handler().live_model,))
    ]


def test_a_promotion_made_after_the_snapshot_answers_from_the_first_request_after_restore(
    live_bundle: Bundle, registry: Registry, invoke: Invoke
) -> None:
    newer = variant(live_bundle, 0.97)
    registry.register(newer, live_bundle.onnx_bytes)
    registry.promote(newer.version, "promoted after the snapshot")
    # Within the refresh interval a container that was not restored still answers with what it loaded.
    assert invoke("GET", "/health")[1]["model_version"] == live_bundle.version

    restore_from_snapshot()

    status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert (status, body["model_version"]) == (200, newer.version), body


def test_clients_are_made_afresh_with_the_credentials_of_the_restored_container(
    live_bundle: Bundle, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = factory.client("ssm")
    assert _access_key(before) == os.environ["AWS_ACCESS_KEY_ID"] != "restored"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "restored")

    restore_from_snapshot()

    after = factory.client("ssm")
    assert after is not before and _access_key(after) == "restored"
    assert invoke("GET", "/health")[0] == 200


def test_each_restored_container_draws_its_own_random_sequence(live_bundle: Bundle, invoke: Invoke) -> None:
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)  # every container restored from one snapshot starts from its state
        restore_from_snapshot()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]


def test_an_unreadable_pointer_at_restore_keeps_the_snapshot_model_answering(
    live_bundle: Bundle, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    restore_from_snapshot()
    store = _handler().live_model._pointer_store

    def unreachable() -> Any:
        raise ConnectionError("SSM unreachable")

    monkeypatch.setattr(store, "read", unreachable)
    status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert (status, body["model_version"]) == (200, live_bundle.version), body
    assert body["predictions"][0]["label"] is not None
