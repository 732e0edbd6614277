"""Capture on the request path and POST /feedback, through the real handler under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.adapters import factory
from functions.core.capture import CAPTURE_MARKER, CaptureRecord
from functions.training.train import Bundle
from slipway.local.events import FakeLambdaContext, proxy_event
from slipway.names import ResourceNames
from tests.conftest import example_row


def _call(module: Any, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    response = module.lambda_handler(proxy_event(method, path, body=json.dumps(body)), FakeLambdaContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], headers, json.loads(response["body"])


def _capture_lines(text: str) -> list[CaptureRecord]:
    return [CaptureRecord.model_validate_json(line) for line in text.splitlines() if CAPTURE_MARKER in line]


def test_a_sampled_request_writes_one_capture_record_per_row(
    live_bundle: Bundle, handler_module: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [example_row(live_bundle, i) for i in range(3)]
    rows[1] = {k: v for k, v in rows[1].items() if k != "worst_area"}  # one imputed feature
    capsys.readouterr()
    status, headers, body = _call(handler_module, "POST", "/predict", {"instances": rows})
    assert status == 200
    records = _capture_lines(capsys.readouterr().out)
    assert [r.row for r in records] == [0, 1, 2]
    assert {r.request_id for r in records} == {headers["X-Request-Id"]}
    assert all(r.model_version == live_bundle.version for r in records)
    assert records[1].features["worst_area"] is None and records[1].imputed == ["worst_area"]
    assert records[0].features["mean_radius"] == rows[0]["mean_radius"]
    assert [r.label for r in records] == [p["label"] for p in body["predictions"]]


def test_sampling_rate_zero_writes_nothing(live_bundle: Bundle, handler_module: Any, capsys: Any) -> None:
    handler_module.capture.sampling_rate = 0.0
    capsys.readouterr()
    status, _, _ = _call(handler_module, "POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert status == 200
    assert _capture_lines(capsys.readouterr().out) == []


def _store_capture(names: ResourceNames, request_id: str) -> None:
    store = factory.monitoring_store(names.artifacts_bucket)
    now = datetime.now(UTC)
    line = json.dumps({CAPTURE_MARKER: 1, "request_id": request_id, "row": 0, "time": now.isoformat(),
                       "model_version": "v", "features": {}}).encode()  # fmt: skip
    store.put_capture(now, "test.jsonl", [line])


def test_feedback_is_stored_and_unknown_ids_reported(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames
) -> None:
    _store_capture(names, "known-id")
    items = [
        {"request_id": "known-id", "label": "benign"},
        {"request_id": "never-seen", "row": 2, "label": "malignant"},
    ]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 200
    assert body == {"accepted": 2, "duplicates": [], "unknown": ["never-seen"]}
    stored = list(factory.monitoring_store(names.artifacts_bucket).feedback())
    assert {(s.request_id, s.row, s.label) for s in stored} == {
        ("known-id", 0, "benign"),
        ("never-seen", 2, "malignant"),
    }


def test_duplicate_feedback_keeps_the_first_of_a_batch(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames
) -> None:
    items = [{"request_id": "r", "label": "benign"}, {"request_id": "r", "row": 0, "label": "malignant"}]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 200
    assert body["accepted"] == 1
    assert body["duplicates"] == [{"request_id": "r", "row": 0, "label": "malignant"}]
    stored = list(factory.monitoring_store(names.artifacts_bucket).feedback())
    assert [(s.request_id, s.label) for s in stored] == [("r", "benign")]


@pytest.mark.parametrize(
    "body",
    [{}, {"items": []}, {"items": [{"label": "x"}]}, {"items": [{"request_id": "r", "label": "x", "extra": 1}]},
     {"items": [{"request_id": "r", "row": -1, "label": "x"}]}],
)  # fmt: skip
def test_invalid_feedback_is_a_422_and_stores_nothing(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames, body: Any
) -> None:
    status, _, answer = _call(handler_module, "POST", "/feedback", body)
    assert status == 422, answer
    assert answer["message"].startswith("invalid request body")
    assert list(factory.monitoring_store(names.artifacts_bucket).feedback()) == []
