"""Capture on the request path and POST /feedback, through the real handler under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.adapters import factory
from functions.core.capture import CAPTURE_MARKER, ROWS_PER_LINE, CaptureRecord
from functions.core.feedback import LabelJoin
from functions.inference.caller import caller_of
from functions.training.train import Bundle
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event
from stage.names import ResourceNames
from tests.conftest import example_row


def _call(module: Any, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    response = module.lambda_handler(proxy_event(HttpRequest(method, path, body=json.dumps(body))), FakeLambdaContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], headers, json.loads(response["body"])


def _capture_lines(text: str) -> list[CaptureRecord]:
    return [CaptureRecord.model_validate_json(line) for line in text.splitlines() if CAPTURE_MARKER in line]


def test_a_sampled_request_writes_its_rows_as_columns(
    live_bundle: Bundle, handler_module: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [example_row(live_bundle, i) for i in range(3)]
    rows[1] = {k: v for k, v in rows[1].items() if k != "worst_area"}  # one imputed feature
    capsys.readouterr()
    status, headers, body = _call(handler_module, "POST", "/predict", {"instances": rows})
    assert status == 200
    (record,) = _capture_lines(capsys.readouterr().out)
    assert (record.request_id, record.first_row, record.rows) == (headers["X-Request-Id"], 0, 3)
    assert record.model_version == live_bundle.version
    assert list(record.features) == live_bundle.manifest.feature_spec.names
    assert record.features["worst_area"][1] is None and record.imputed == [[], ["worst_area"], []]
    assert record.features["mean_radius"] == [row["mean_radius"] for row in rows]
    assert record.label == [p["label"] for p in body["predictions"]]
    assert record.probabilities is not None
    assert [
        dict(zip(record.probabilities, p, strict=True)) for p in zip(*record.probabilities.values(), strict=True)
    ] == [p["probabilities"] for p in body["predictions"]]
    assert record.value is None and record.fallback == [None, None, None]
    expanded = list(record.row_records())
    assert [r.row for r in expanded] == [0, 1, 2] and expanded[1].imputed == ["worst_area"]
    assert expanded[2].features["mean_radius"] == rows[2]["mean_radius"]


def test_a_large_request_is_written_in_lines_of_rows_per_line(
    live_bundle: Bundle, handler_module: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [example_row(live_bundle, i) for i in range(ROWS_PER_LINE * 2 + 7)]
    capsys.readouterr()
    status, _, body = _call(handler_module, "POST", "/predict", {"instances": rows})
    assert status == 200
    out = capsys.readouterr().out
    records = _capture_lines(out)
    assert [(r.first_row, r.rows) for r in records] == [(0, ROWS_PER_LINE), (ROWS_PER_LINE, ROWS_PER_LINE),
                                                        (2 * ROWS_PER_LINE, 7)]  # fmt: skip
    expanded = [row for record in records for row in record.row_records()]
    assert [r.row for r in expanded] == list(range(len(rows)))
    assert [r.label for r in expanded] == [p["label"] for p in body["predictions"]]
    assert [r.features["mean_radius"] for r in expanded] == [row["mean_radius"] for row in rows]


def test_sampling_rate_zero_writes_nothing(live_bundle: Bundle, handler_module: Any, capsys: Any) -> None:
    handler_module.capture.sampling_rate = 0.0
    capsys.readouterr()
    status, _, _ = _call(handler_module, "POST", "/predict", {"instances": [example_row(live_bundle)]})
    assert status == 200
    assert _capture_lines(capsys.readouterr().out) == []


def test_feedback_is_stored_as_sent_and_answered_without_reading_the_capture(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames
) -> None:
    items = [
        {"request_id": "served-id", "label": "benign"},
        {"request_id": "never-seen", "row": 2, "label": "malignant"},
    ]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    # 202: stored; the monitor joins each label to its captured row, and counts those it cannot.
    assert (status, body) == (202, {"accepted": 2, "duplicates": []})
    stored = list(factory.monitoring_store(names.artifacts_bucket).feedback())
    assert {(s.request_id, s.row, s.label) for s in stored} == {
        ("served-id", 0, "benign"),
        ("never-seen", 2, "malignant"),
    }


@pytest.mark.parametrize("label", ["Benign", "new-class", 1, 0.5])
def test_a_label_the_live_model_cannot_have_is_refused_and_nothing_is_stored(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames, label: Any
) -> None:
    items = [{"request_id": "r", "label": "benign"}, {"request_id": "r", "row": 1, "label": label}]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 422, body
    assert body["errors"] == [
        {"loc": ["items", 1, "label"], "type": "label_class",
         "msg": "not one of the live model's classes (benign, malignant)"}
    ]  # fmt: skip
    assert list(factory.monitoring_store(names.artifacts_bucket).feedback()) == []


def test_duplicate_feedback_keeps_the_first_of_a_batch(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames
) -> None:
    items = [{"request_id": "r", "label": "benign"}, {"request_id": "r", "row": 0, "label": "malignant"}]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 202
    assert body["accepted"] == 1
    assert body["duplicates"] == [{"request_id": "r", "row": 0, "label": "malignant"}]
    stored = list(factory.monitoring_store(names.artifacts_bucket).feedback())
    assert [(s.request_id, s.label) for s in stored] == [("r", "benign")]


@pytest.mark.parametrize(
    "body",
    [{}, {"items": []}, {"items": [{"label": "x"}]}, {"items": [{"request_id": "r", "label": "x", "extra": 1}]},
     {"items": [{"request_id": "r", "row": -1, "label": "x"}]},
     {"items": [{"request_id": "r", "label": float("nan")}]}, {"items": [{"request_id": "r", "label": float("-inf")}]},
     {"items": [{"request_id": "r", "key": "k", "label": "x"}]}, {"items": [{"key": "k", "row": 1, "label": "x"}]},
     {"items": [{"key": "", "label": "x"}]}, {"items": [{"key": "k", "label": "x", "time": "2026-12-01T00:00:00"}]}],
)  # fmt: skip
def test_invalid_feedback_is_a_422_and_stores_nothing(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames, body: Any
) -> None:
    status, _, answer = _call(handler_module, "POST", "/feedback", body)
    assert status == 422, answer
    assert answer["message"].startswith("invalid request body")
    assert list(factory.monitoring_store(names.artifacts_bucket).feedback()) == []


ROW_KEY = "patient_id"


@pytest.fixture
def keyed_handler(handler_module: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The handler of a stage whose data.key is ROW_KEY (ROW_KEY in its environment)."""
    monkeypatch.setattr(handler_module, "config", handler_module.config.model_copy(update={"row_key": ROW_KEY}))
    return handler_module


def test_a_row_key_is_captured_and_never_scored(
    live_bundle: Bundle, keyed_handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [example_row(live_bundle, i) for i in range(3)]
    keyed = [{**rows[0], ROW_KEY: "p-1"}, {**rows[1], ROW_KEY: 7}, rows[2]]
    capsys.readouterr()
    status, _, plain = _call(keyed_handler, "POST", "/predict", {"instances": rows})
    status_keyed, _, answered = _call(keyed_handler, "POST", "/predict", {"instances": keyed})
    assert (status, status_keyed) == (200, 200)
    assert answered["predictions"] == plain["predictions"]  # the key changes no answer
    plain_record, keyed_record = _capture_lines(capsys.readouterr().out)
    assert plain_record.keys is None
    assert keyed_record.keys == ["p-1", "7", None]
    assert ROW_KEY not in keyed_record.features  # not a feature: no drift is computed on it
    assert [row.key for row in keyed_record.row_records()] == ["p-1", "7", None]


@pytest.mark.parametrize("key", [[1], {"a": 1}, 1.5, True, "", "k" * 129])
def test_a_bad_row_key_is_a_422_naming_it(live_bundle: Bundle, keyed_handler: Any, key: Any) -> None:
    status, _, answer = _call(
        keyed_handler, "POST", "/predict", {"instances": [{**example_row(live_bundle), ROW_KEY: key}]}
    )
    assert status == 422, answer
    assert f"'{ROW_KEY}' is the row key" in answer["message"]
    assert answer["errors"][0]["loc"] == ["instances", 0, ROW_KEY]


def test_without_a_declared_key_the_field_is_an_unknown_feature(live_bundle: Bundle, handler_module: Any) -> None:
    status, _, answer = _call(
        handler_module, "POST", "/predict", {"instances": [{**example_row(live_bundle), ROW_KEY: "p-1"}]}
    )
    assert status == 422
    assert f"unknown feature '{ROW_KEY}'" in answer["message"]


def test_feedback_by_key_is_stored_with_its_time(
    live_bundle: Bundle, handler_module: Any, names: ResourceNames
) -> None:
    items = [
        {"key": "p-1", "label": "benign", "time": "2026-12-01T10:00:00Z"},
        {"key": "p-1", "label": "malignant"},
        {"key": "p-2", "label": "malignant"},
    ]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 202
    assert body == {"accepted": 2, "duplicates": [{"row": 0, "key": "p-1", "label": "malignant"}]}
    stored = sorted(factory.monitoring_store(names.artifacts_bucket).feedback(), key=lambda s: str(s.key))
    assert [(s.request_id, s.key, s.label, s.time) for s in stored] == [
        (None, "p-1", "benign", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        (None, "p-2", "malignant", None),
    ]


def _as(caller_key: str, method: str, path: str, body: Any, module: Any) -> tuple[int, dict[str, str], Any]:
    """A call authenticated (by API Gateway) with the API key `caller_key`."""
    event = proxy_event(HttpRequest(method, path, body=json.dumps(body)))
    event["requestContext"]["identity"]["apiKeyId"] = caller_key
    response = module.lambda_handler(event, FakeLambdaContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], headers, json.loads(response["body"])


def test_a_caller_may_label_only_the_predictions_it_was_served(
    live_bundle: Bundle, keyed_handler: Any, names: ResourceNames, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    row = {**example_row(live_bundle), ROW_KEY: "p-7"}
    _, _, answer = _as("key-alice", "POST", "/predict", {"instances": [row]}, keyed_handler)
    [record] = _capture_lines(capsys.readouterr().out)
    assert record.caller == "key:key-alice"
    store = factory.monitoring_store(names.artifacts_bucket)
    store.put_capture(record.time, "capture.jsonl", [record.model_dump_json(by_alias=True).encode()])
    truth = answer["predictions"][0]["label"]
    wrong = "benign" if truth == "malignant" else "malignant"
    # Alice labels her prediction by its key; then Mallory labels it too, wrongly and later.
    for caller, label in (("key-alice", truth), ("key-mallory", wrong)):
        assert _as(caller, "POST", "/feedback", {"items": [{"key": "p-7", "label": label}]}, keyed_handler)[0] == 202
    stored = list(store.feedback())
    assert {s.caller for s in stored} == {"key:key-alice", "key:key-mallory"}

    labels = LabelJoin(stored)
    [captured] = list(record.row_records())
    matched = labels.match(captured.request_id, captured.row, captured.key, captured.time, captured.caller)
    # Alice was served the row: her label joins. Mallory's, though later, neither joins nor hides hers.
    assert matched is not None and (matched.label, matched.caller) == (truth, "key:key-alice")
    counts = labels.counts()
    assert (counts.labels, counts.matched, counts.foreign, counts.duplicates) == (1, 1, 1, 0)


@pytest.mark.parametrize(
    ("context", "caller"),
    [
        ({"identity": {"userArn": "arn:aws:iam::1:role/app", "apiKeyId": "k"}}, "iam:arn:aws:iam::1:role/app"),
        ({"identity": {}, "authorizer": {"claims": {"client_id": "svc-7", "sub": "u"}}}, "jwt:svc-7"),
        ({"identity": {"apiKeyId": "k-1"}}, "key:k-1"),
        # payload format 2.0 (HTTP API, function URL): SigV4 and JWT authorizers
        ({"authorizer": {"iam": {"userArn": "arn:aws:iam::1:role/app"}}}, "iam:arn:aws:iam::1:role/app"),
        ({"authorizer": {"jwt": {"claims": {"sub": "u-2"}}}}, "jwt:u-2"),
        ({"identity": {"sourceIp": "127.0.0.1"}}, None),
        (None, None),
    ],
)
def test_the_caller_is_the_identity_the_front_door_authenticated(context: Any, caller: str | None) -> None:
    assert caller_of(context) == caller


def test_a_label_dated_in_the_future_is_refused(live_bundle: Bundle, handler_module: Any, names: ResourceNames) -> None:
    # A future time would outrank every later label of its row.
    items = [{"key": "p-1", "label": "benign", "time": "2999-01-01T00:00:00Z"}]
    status, _, body = _call(handler_module, "POST", "/feedback", {"items": items})
    assert status == 422 and body["errors"][0]["loc"] == ["items", 0, "time"], body
    assert list(factory.monitoring_store(names.artifacts_bucket).feedback()) == []
