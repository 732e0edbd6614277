"""The inference handler driven with real API Gateway proxy events, against moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import numpy as np
import pytest

from functions.core import layout
from functions.core.registry import Registry
from functions.inference import metrics as metrics_module
from functions.inference.schemas import ErrorBody, PredictResponse
from functions.training.train import Bundle
from tests.conftest import Invoke, example_row


def rows(bundle: Bundle, count: int) -> list[dict[str, float]]:
    return [example_row(bundle, i) for i in range(count)]


# --- the contract ---------------------------------------------------------------------------


def test_predict_answers_every_row_with_the_live_version(invoke: Invoke, live_bundle: Bundle) -> None:
    status, body = invoke("POST", "/predict", {"instances": rows(live_bundle, 3)})
    assert status == 200
    response = PredictResponse.model_validate(body)
    assert response.model_version == live_bundle.version
    assert len(response.predictions) == 3
    for prediction in response.predictions:
        assert prediction.label in live_bundle.manifest.classes
        assert set(prediction.probabilities) == set(live_bundle.manifest.classes)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert prediction.fallback is None and prediction.imputed == [] and prediction.out_of_range == []


def test_predictions_match_the_model_on_the_example_data(invoke: Invoke, live_bundle: Bundle) -> None:
    from model.recipe import load_data

    _, target = load_data()
    status, body = invoke("POST", "/predict", {"instances": rows(live_bundle, 100)})
    labels = [p["label"] for p in body["predictions"]]
    accuracy = np.mean(np.array(labels) == target[:100])
    assert status == 200 and accuracy > 0.9


def test_missing_optional_feature_is_imputed_and_flagged(invoke: Invoke, live_bundle: Bundle) -> None:
    row = example_row(live_bundle)
    del row["worst_area"]
    status, body = invoke("POST", "/predict", {"instances": [row]})
    assert status == 200
    assert body["predictions"][0]["imputed"] == ["worst_area"]
    assert body["predictions"][0]["fallback"] is None


def test_value_outside_training_range_is_served_and_flagged(invoke: Invoke, live_bundle: Bundle) -> None:
    feature = next(f for f in live_bundle.manifest.feature_spec.features if f.name == "mean_radius")
    row = {**example_row(live_bundle), "mean_radius": feature.train_max + 1}
    status, body = invoke("POST", "/predict", {"instances": [row]})
    assert status == 200 and body["predictions"][0]["out_of_range"] == ["mean_radius"]


def test_model_route_describes_the_live_model(invoke: Invoke, live_bundle: Bundle) -> None:
    status, body = invoke("GET", "/model")
    manifest = live_bundle.manifest
    assert status == 200
    assert body["version"] == manifest.version and body["task"] == "classification"
    assert body["classes"] == list(manifest.classes)
    assert body["metrics"] == manifest.metrics
    features = body["feature_spec"]["features"]
    assert [f["name"] for f in features] == manifest.feature_spec.names
    assert {"precision", "valid_min", "valid_max", "train_min", "train_max", "required"} <= set(features[0])


def test_health_is_ready_with_a_live_model(invoke: Invoke, live_bundle: Bundle) -> None:
    assert invoke("GET", "/health") == (
        200,
        {"status": "ready", "model_version": live_bundle.version, "reason": None, "candidate": None},
    )


def test_openapi_is_generated_from_the_pydantic_models(invoke: Invoke, live_bundle: Bundle) -> None:
    status, document = invoke("GET", "/openapi.json")
    assert status == 200
    assert {"/predict", "/model", "/health"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"PredictRequest", "PredictResponse", "PredictionOut", "ErrorBody", "ModelInfo", "Health"} <= set(schemas)
    shapes = schemas["PredictRequest"]["properties"]
    assert set(shapes) == {"instances", "dataframe_records", "dataframe_split", "inputs"}
    for shape in ("instances", "dataframe_records"):
        [rows] = [option for option in shapes[shape]["anyOf"] if option.get("type") == "array"]
        assert rows["maxItems"] == 1000 and rows["minItems"] == 1
    assert schemas["DataFrameSplit"]["properties"]["data"]["maxItems"] == 1000
    assert "text/csv" in document["paths"]["/predict"]["post"]["description"]
    ok = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/PredictResponse")


def test_the_cold_start_times_each_step_of_the_model_load(handler_module: Any, live_bundle: Bundle) -> None:
    live_model = handler_module.live_model
    predictor = live_model.current().predictor
    steps = live_model.load_ms(predictor)
    assert list(steps) == ["pointer_read", "bundle_read", "hash_check", "session", "batch_invariance_probe"]
    assert all(ms > 0 for ms in steps.values()), steps


def test_docs_is_a_swagger_ui_page_of_the_same_document_with_nothing_from_a_cdn(
    handler_module: Any, live_bundle: Bundle
) -> None:
    from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event

    response = handler_module.lambda_handler(proxy_event(HttpRequest("GET", "/docs")), FakeLambdaContext())

    headers = {**response.get("headers", {}), **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()}}
    assert response["statusCode"] == 200 and headers["Content-Type"] == "text/html", response.keys()
    page = response["body"]
    assert "SwaggerUIBundle" in page and '"/predict"' in page and "dataframe_split" in page
    assert "x-api-key" in page
    assert "<script src=" not in page and "cdn" not in page.lower(), "script and styles are inline"
    assert len(page.encode()) < 6 * 2**20, "under Lambda's response limit"


def test_unknown_route_is_404_with_an_error_body(invoke: Invoke, live_bundle: Bundle) -> None:
    status, body = invoke("GET", "/nope")
    assert status == 404
    assert set(body) == {"message", "errors"} and "GET /openapi.json lists the routes" in body["message"]
    assert body["errors"][0]["loc"] == ["path"] and body["errors"][0]["type"] == "not_found"


# --- bad input: a 4xx naming the field and the rule, never a 500 ----------------------------


def _error(invoke: Invoke, expected_status: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    status, body = invoke(*args, **kwargs)
    assert status == expected_status, body
    error = ErrorBody.model_validate(body)
    assert error.message and error.errors
    return body


def test_malformed_json_is_400(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _error(invoke, 400, "POST", "/predict", raw='{"instances": [')
    assert body["errors"][0]["type"] == "json_invalid" and "malformed JSON" in body["message"]


# Each of these raised in the handler before (found by test_fuzz): RecursionError from the standard
# library's parser, and a lone surrogate that no error body could encode (PydanticSerializationError).
@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"instances": [NaN, ' + "[" * 5_000 + "]" * 5_000 + "]}", "nested too deeply"),
        ('{"instances": [{"\\ud800": NaN}]}', "surrogate pair"),
        ('{"items": [{"request_id": "\\udfff", "label": "benign"}]}', "surrogate pair"),
    ],
    ids=["nested-deep", "nested-deep-after-nan", "lone-surrogate-key", "lone-surrogate-value"],
)
def test_json_that_cannot_be_read_as_unicode_values_is_400(
    invoke: Invoke, live_bundle: Bundle, raw: str, says: str
) -> None:
    for path in ("/predict", "/feedback"):
        body = _error(invoke, 400, "POST", path, raw=raw)
        assert body["errors"][0]["type"] == "json_invalid" and says in body["message"], body


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None])
def test_non_object_body_is_422(invoke: Invoke, live_bundle: Bundle, payload: Any) -> None:
    body = _error(invoke, 422, "POST", "/predict", raw=json.dumps(payload))
    assert body["errors"][0]["loc"] == ["body"]


@pytest.mark.parametrize("shape", ["instances", "dataframe_records"])
@pytest.mark.parametrize("row", [[1, 2], "text", 3, None])
def test_a_row_that_is_not_an_object_is_422_naming_its_index(
    invoke: Invoke, live_bundle: Bundle, shape: str, row: Any
) -> None:
    body = _error(invoke, 422, "POST", "/predict", {shape: [example_row(live_bundle), row]})
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [([shape, 1], "dict_type")], body


def test_missing_body_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    _error(invoke, 422, "POST", "/predict")


def test_unexpected_top_level_field_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _error(invoke, 422, "POST", "/predict", {"instances": [example_row(live_bundle)], "extra": 1})
    assert body["errors"][0]["loc"] == ["extra"]


def test_unknown_feature_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    row = {**example_row(live_bundle), "tumour_colour": 3}
    body = _error(invoke, 422, "POST", "/predict", {"instances": [row]})
    assert body["errors"] == [
        {"loc": ["instances", 0, "tumour_colour"], "type": "unknown_feature", "msg": body["errors"][0]["msg"]}
    ]
    assert "unknown feature 'tumour_colour'" in body["message"]


@pytest.mark.parametrize("value", ["12.5", True, [1], {"a": 1}])
def test_wrong_type_is_422(invoke: Invoke, live_bundle: Bundle, value: Any) -> None:
    row = {**example_row(live_bundle), "mean_texture": value}
    body = _error(invoke, 422, "POST", "/predict", {"instances": [row]})
    assert body["errors"][0]["loc"] == ["instances", 0, "mean_texture"]
    assert body["errors"][0]["type"] == "type" and "must be a number" in body["errors"][0]["msg"]


# An integer of more digits than int() converts raised ValueError in the parser before (found by test_fuzz).
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, "-" + "9" * 5000])
def test_non_finite_number_is_422(invoke: Invoke, live_bundle: Bundle, literal: str) -> None:
    row = json.dumps(example_row(live_bundle))[:-1] + f', "worst_area": {literal}}}'
    body = _error(invoke, 422, "POST", "/predict", raw=f'{{"instances": [{row}]}}')
    assert body["errors"][0]["loc"] == ["instances", 0, "worst_area"] and body["errors"][0]["type"] == "finite"


def test_value_outside_valid_range_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    row = {**example_row(live_bundle), "mean_area": -5.0}
    body = _error(invoke, 422, "POST", "/predict", {"instances": [row]})
    assert body["errors"][0]["type"] == "range" and "'mean_area' must be between 0.0 and" in body["message"]


def test_missing_required_feature_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    row = example_row(live_bundle)
    del row["mean_radius"]
    body = _error(invoke, 422, "POST", "/predict", {"instances": [example_row(live_bundle), row]})
    assert body["errors"] == [
        {"loc": ["instances", 1, "mean_radius"], "type": "missing", "msg": "'mean_radius' is required"}
    ]


def test_empty_instances_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _error(invoke, 422, "POST", "/predict", {"instances": []})
    assert body["errors"][0]["loc"] == ["instances"] and body["errors"][0]["type"] == "too_short"


def test_too_many_instances_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _error(invoke, 422, "POST", "/predict", {"instances": [{"mean_radius": 1.0}] * 1001})
    assert body["errors"][0]["type"] == "too_long"


def test_instance_that_is_not_an_object_is_422(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _error(invoke, 422, "POST", "/predict", {"instances": [example_row(live_bundle), 7]})
    assert body["errors"][0]["loc"] == ["instances", 1]


def test_body_over_the_size_limit_is_413(
    invoke: Invoke, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch, handler_module: Any
) -> None:
    monkeypatch.setattr(handler_module, "config", handler_module.config.model_copy(update={"max_body_bytes": 2048}))
    body = _error(invoke, 413, "POST", "/predict", {"instances": rows(live_bundle, 10)})
    assert body["errors"][0]["type"] == "too_large" and "limit is 2048" in body["message"]


def test_wrong_content_type_is_415(invoke: Invoke, live_bundle: Bundle) -> None:
    _error(invoke, 415, "POST", "/predict", raw="instances=1", headers={"Content-Type": "text/plain"})


def test_bad_input_is_counted_and_loses_nothing(invoke: Invoke, live_bundle: Bundle, capsys: Any) -> None:
    capsys.readouterr()
    invoke("POST", "/predict", {"instances": [{"bogus": 1}]})
    metrics = _emf(capsys.readouterr().out)
    assert metrics["PredictRequests"] == 1 and metrics["InvalidRequests"] == 1
    # The container keeps serving after bad input.
    assert invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})[0] == 200


# --- repeatability ---------------------------------------------------------------------------


def test_inputs_equal_at_their_precision_give_identical_responses(invoke: Invoke, live_bundle: Bundle) -> None:
    spec = {f.name: f for f in live_bundle.manifest.feature_spec.features}
    row = example_row(live_bundle)
    nudged = {name: value + 0.4 * 10 ** -spec[name].decimals for name, value in row.items()}
    assert nudged != row
    assert invoke("POST", "/predict", {"instances": [row]}) == invoke("POST", "/predict", {"instances": [nudged]})


def test_a_row_alone_and_inside_a_batch_get_the_identical_prediction(invoke: Invoke, live_bundle: Bundle) -> None:
    batch = rows(live_bundle, 100)
    _, together = invoke("POST", "/predict", {"instances": batch})
    alone = [invoke("POST", "/predict", {"instances": [row]})[1]["predictions"][0] for row in batch]
    assert alone == together["predictions"]


# --- plan B ------------------------------------------------------------------------------------


def _fallback_checks(body: dict[str, Any], bundle: Bundle, reason: str, count: int) -> None:
    fallback = bundle.manifest.fallback
    assert len(body["predictions"]) == count
    for prediction in body["predictions"]:
        assert prediction["fallback"] == reason
        assert prediction["label"] == fallback.label and prediction["probabilities"] == fallback.probabilities


def test_no_live_model_answers_with_plan_b(invoke: Invoke, aws: None) -> None:
    status, body = invoke("POST", "/predict", {"instances": [{"mean_radius": 1.0}, {}]})
    assert status == 200
    assert [p["fallback"] for p in body["predictions"]] == ["no_live_model", "no_live_model"]
    assert invoke("GET", "/health")[1] == {
        "status": "degraded",
        "model_version": None,
        "reason": "no_live_model",
        "candidate": None,
    }
    assert invoke("GET", "/model")[0] == 503


def _break(names: Any, bundle: Bundle, *, key: str, body: bytes | None) -> None:
    s3 = boto3.client("s3")
    if body is None:
        s3.delete_object(Bucket=names.artifacts_bucket, Key=key)
    else:
        s3.put_object(Bucket=names.artifacts_bucket, Key=key, Body=body)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        (layout.model_key, None),  # bundle missing
        (layout.model_key, b"not an onnx graph"),  # graph corrupt
        (layout.manifest_key, b'{"truncated": '),  # manifest corrupt
        (layout.model_key, b"\x08\x07" + b"\x00" * 64),  # valid-looking bytes, wrong hash
    ],
    ids=["missing", "corrupt-graph", "corrupt-manifest", "wrong-hash"],
)
def test_unusable_bundle_answers_with_the_fallback_from_the_pointer(
    live_bundle: Bundle, names: Any, handler_env: None, key: Any, body: bytes | None, invoke_factory: Any
) -> None:
    _break(names, live_bundle, key=key(live_bundle.version), body=body)
    invoke = invoke_factory()
    status, answer = invoke("POST", "/predict", {"instances": rows(live_bundle, 2)})
    assert status == 200
    _fallback_checks(answer, live_bundle, "model_unavailable", 2)
    assert answer["model_version"] == live_bundle.version
    assert invoke("GET", "/health")[1] == {
        "status": "degraded",
        "model_version": live_bundle.version,
        "reason": "model_unavailable",
        "candidate": None,
    }


def test_runtime_error_answers_with_plan_b_and_counts_it(
    invoke: Invoke, live_bundle: Bundle, handler_module: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    invoke("GET", "/health")  # load the model
    predictor = handler_module.live_model.current().predictor

    class Exploding:
        def run(self, *args: Any) -> Any:
            raise RuntimeError("onnxruntime fault")

    monkeypatch.setattr(predictor, "_session", Exploding())
    capsys.readouterr()
    status, body = invoke("POST", "/predict", {"instances": rows(live_bundle, 3)})
    assert status == 200
    _fallback_checks(body, live_bundle, "runtime_error", 3)
    out = capsys.readouterr().out
    assert _emf(out)["Fallbacks"] == 3
    by_reason = [m for m in _emf_documents(out) if "FallbacksByReason" in m]
    assert by_reason and by_reason[0]["reason"] == "runtime_error" and by_reason[0]["FallbacksByReason"] == 3


def test_non_finite_model_output_answers_with_plan_b(
    invoke: Invoke, live_bundle: Bundle, handler_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("GET", "/health")
    predictor = handler_module.live_model.current().predictor

    class NaNModel:
        def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
            n = next(iter(feeds.values())).shape[0]
            return [np.array(["benign"] * n), np.full((n, 2), np.nan, dtype=np.float32)]

    monkeypatch.setattr(predictor, "_session", NaNModel())
    status, body = invoke("POST", "/predict", {"instances": rows(live_bundle, 2)})
    assert status == 200
    _fallback_checks(body, live_bundle, "non_finite_output", 2)


def test_bad_input_is_still_refused_while_the_model_fails(
    invoke: Invoke, live_bundle: Bundle, handler_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("GET", "/health")
    predictor = handler_module.live_model.current().predictor
    monkeypatch.setattr(predictor, "_session", None)
    assert invoke("POST", "/predict", {"instances": [{"bogus": 1}]})[0] == 422


# --- the live pointer ----------------------------------------------------------------------


def test_promotion_reaches_a_warm_container_after_the_refresh_interval(
    live_bundle: Bundle, registry: Registry, handler_env: None, monkeypatch: pytest.MonkeyPatch, invoke_factory: Any
) -> None:
    monkeypatch.setenv("POINTER_REFRESH_SECONDS", "0.2")
    invoke = invoke_factory()
    assert invoke("GET", "/health")[1]["model_version"] == live_bundle.version
    other = live_bundle.manifest.model_copy(update={"metrics": {**live_bundle.manifest.metrics, "accuracy": 0.5}})
    other = other.with_version(live_bundle.onnx_bytes)
    registry.register(other, live_bundle.onnx_bytes)
    registry.promote(other.version, "test promotion")
    assert invoke("GET", "/health")[1]["model_version"] == live_bundle.version  # within the interval
    time.sleep(0.25)
    assert invoke("POST", "/predict", {"instances": rows(live_bundle, 1)})[1]["model_version"] == other.version


def test_bundle_is_loaded_at_init_not_per_request(
    invoke: Invoke, live_bundle: Bundle, handler_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert handler_module.live_model.current().version == live_bundle.version  # loaded during init
    store = handler_module.live_model._store
    calls: list[str] = []
    original = store.get_bundle
    monkeypatch.setattr(store, "get_bundle", lambda version: calls.append(version) or original(version))
    for _ in range(5):
        assert invoke("POST", "/predict", {"instances": rows(live_bundle, 1)})[0] == 200
    assert calls == []


# --- metrics ---------------------------------------------------------------------------------


def test_predict_publishes_emf_metrics_and_batches_scoring_latency(
    invoke: Invoke, live_bundle: Bundle, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_module, "_scoring_latencies", metrics_module.LatencyBatch(size=3))
    row = example_row(live_bundle)
    del row["worst_area"]
    capsys.readouterr()
    _, body = invoke("POST", "/predict", {"instances": [row, example_row(live_bundle, 1)]})
    documents = _emf_documents(capsys.readouterr().out)
    metrics = documents[-1]
    directive = metrics["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Slipway/dev" and directive["Dimensions"] == [["service"]]
    assert metrics["PredictRequests"] == 1 and metrics["Predictions"] == 2 and metrics["Imputations"] == 1
    assert metrics["Outliers"] == sum(p["outlier"]["flag"] for p in body["predictions"])
    # A count that is zero is not published (a missing datapoint is a zero to every alarm on it), nor is
    # metadata, nor a latency before its batch is full: the document is written for every request.
    assert {"Fallbacks", "LastGoodAnswers", "OutOfRange", "ScoringLatency", "model_version"}.isdisjoint(metrics)
    for _ in range(2):
        invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
    third = _emf(capsys.readouterr().out.splitlines()[-1])
    assert len(third["ScoringLatency"]) == 3 and all(0 < latency < 1000 for latency in third["ScoringLatency"])
    assert {"Name": "ScoringLatency", "Unit": "Milliseconds"} in third["_aws"]["CloudWatchMetrics"][0]["Metrics"]


def test_an_implausible_row_inside_every_range_is_flagged_counted_and_captured(
    invoke: Invoke, live_bundle: Bundle, capsys: Any
) -> None:
    """Each value inside its training range, the combination (a large radius, a small area) unlike training."""
    from model.recipe import load_data

    table, _ = load_data()
    odd = {**example_row(live_bundle), "mean_radius": float(table["mean_radius"].quantile(0.95)),
           "mean_area": float(table["mean_area"].quantile(0.05))}  # fmt: skip
    capsys.readouterr()
    status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle), odd]})
    out = capsys.readouterr().out

    typical, implausible = PredictResponse.model_validate(body).predictions
    assert status == 200 and implausible.out_of_range == [] and implausible.fallback is None
    assert implausible.outlier is not None and implausible.outlier.flag and implausible.outlier.score > 1
    assert typical.outlier is not None and not typical.outlier.flag and typical.outlier.score < 1
    assert _emf(out)["Outliers"] == 1
    [capture] = [json.loads(line) for line in out.splitlines() if '"slipway_capture"' in line]
    assert capture["outlier"] == [typical.outlier.score, implausible.outlier.score]


def _emf_documents(out: str) -> list[dict[str, Any]]:
    documents = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            documents.append({k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in document.items()})
    return documents


def _emf(out: str) -> dict[str, Any]:
    documents = [d for d in _emf_documents(out) if "PredictRequests" in d]
    assert len(documents) == 1, documents
    return documents[0]
