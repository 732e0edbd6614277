"""The API's contract through the real handler: every front door's event, the Open Inference Protocol's routes,
MLflow's `inputs` shape, the routes the function declares and the statuses its document lists."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.core.errors import ModelUnavailable
from functions.core.predictor import Predictor
from functions.inference.routes import SERVED_ROUTES
from functions.inference.v2_routes import model_name_of
from functions.training.train import Bundle
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, front_door_event
from tests.conftest import Invoke, example_row

FRONT_DOORS = ("rest", "http", "function_url")
ERROR_STATUSES = {"400", "413", "415", "422", "429", "500", "503"}
SOME = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def rows(bundle: Bundle, count: int) -> list[dict[str, float]]:
    return [example_row(bundle, i) for i in range(count)]


Send = Callable[..., tuple[int, dict[str, str], Any]]


@pytest.fixture(params=FRONT_DOORS)
def door(
    request: pytest.FixtureRequest, live_bundle: Bundle, handler_env: None, monkeypatch: pytest.MonkeyPatch
) -> Send:
    """A cold container of the front door type `request.param`, sent that type's events."""
    monkeypatch.setenv("FRONT_DOOR", request.param)
    module = cold_start("functions.inference.handler")

    def send(method: str, path: str, body: Any = None, *, raw: str | bytes | None = None, **kwargs: Any) -> Any:
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        event = front_door_event(request.param, HttpRequest(method, path, body=payload, **kwargs))
        response = module.lambda_handler(event, FakeLambdaContext())
        headers = {
            **(response.get("headers") or {}),
            **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()},
        }
        return response["statusCode"], headers, json.loads(response["body"])

    return send


# --- every front door ------------------------------------------------------------------------------------


def test_every_front_door_gets_the_same_answers_and_limits(door: Send, live_bundle: Bundle) -> None:
    instances = rows(live_bundle, 3)
    status, headers, body = door("POST", "/predict", {"instances": instances})
    assert status == 200 and len(body["predictions"]) == 3 and headers["X-Request-Id"]
    csv = "\n".join([",".join(instances[0]), *(",".join(str(v) for v in row.values()) for row in instances)])
    assert door("POST", "/predict", raw=csv, headers={"Content-Type": "text/csv"})[2] == body
    too_many = door("POST", "/predict", {"instances": rows(live_bundle, 1) * 1001})
    assert too_many[0] == 422
    status, _, refused = door("POST", "/predict", raw="x" * 7_000_000)
    assert status == 413 and "limit" in refused["message"]
    assert door("POST", "/predict", raw="{}", headers={"Content-Type": "text/plain"})[0] == 415
    status, _, missing = door("GET", "/nowhere")
    assert status == 404 and "GET /nowhere" in missing["message"]
    assert door("GET", "/v2/health/live")[:3:2] == (200, {"live": True})
    status, headers, _ = door("POST", "/predict/async", {"instances": instances})  # no queue in this container
    assert status == 503 and headers["Retry-After"] == os.environ["POINTER_REFRESH_SECONDS"].split(".")[0]


# --- the Open Inference Protocol -------------------------------------------------------------------------


def infer_body(bundle: Bundle, instances: list[dict[str, float]]) -> dict[str, Any]:
    names = bundle.manifest.feature_spec.names
    tensors = [
        {"name": name, "datatype": "FP64", "shape": [len(instances)], "data": [row[name] for row in instances]}
        for name in names
    ]
    return {"id": "call-1", "inputs": tensors}


def test_infer_answers_as_predict_does_with_named_tensors_or_one_matrix(invoke: Invoke, live_bundle: Bundle) -> None:
    instances = rows(live_bundle, 5)
    name = model_name_of(live_bundle.manifest)
    _, predicted = invoke("POST", "/predict", {"instances": instances})
    status, answer = invoke("POST", f"/v2/models/{name}/infer", infer_body(live_bundle, instances))
    assert status == 200, answer
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (name, live_bundle.version, "call-1")
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert outputs["predictions"]["data"] == [p["label"] for p in predicted["predictions"]]
    classes = list(live_bundle.manifest.classes)
    assert outputs["probabilities"]["shape"] == [5, len(classes)]
    expected = [p["probabilities"][c] for p in predicted["predictions"] for c in classes]
    assert outputs["probabilities"]["data"] == pytest.approx(expected)

    names = live_bundle.manifest.feature_spec.names
    matrix = [[row[n] for n in names] for row in instances]  # nested, as a client may send it
    body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [5, len(names)], "data": matrix}],
            "outputs": [{"name": "predictions"}]}  # fmt: skip
    status, answer = invoke("POST", f"/v2/models/{name}/infer", body)
    assert status == 200 and [o["name"] for o in answer["outputs"]] == ["predictions"]
    assert answer["outputs"][0]["data"] == outputs["predictions"]["data"]


def test_metadata_and_health_follow_the_protocol(invoke: Invoke, live_bundle: Bundle) -> None:
    name = model_name_of(live_bundle.manifest)
    assert invoke("GET", "/v2/health/ready") == (200, {"ready": True})
    status, metadata = invoke("GET", f"/v2/models/{name}")
    assert status == 200 and metadata["versions"] == [live_bundle.version]
    assert [i["name"] for i in metadata["inputs"]] == live_bundle.manifest.feature_spec.names
    assert all(i["shape"] == [-1] and i["datatype"] == "FP64" for i in metadata["inputs"])
    assert [o["name"] for o in metadata["outputs"]] == ["predictions", "probabilities"]


def test_the_model_and_its_version_are_ready_and_other_versions_are_a_protocol_404(
    invoke: Invoke, live_bundle: Bundle
) -> None:
    name, version = model_name_of(live_bundle.manifest), live_bundle.version
    assert invoke("GET", f"/v2/models/{name}/ready") == (200, {"ready": True})
    assert invoke("GET", f"/v2/models/{name}/versions/{version}/ready") == (200, {"ready": True})
    assert invoke("GET", f"/v2/models/{name}/versions/{version}") == invoke("GET", f"/v2/models/{name}")
    status, answer = invoke(
        "POST", f"/v2/models/{name}/versions/{version}/infer", infer_body(live_bundle, rows(live_bundle, 2))
    )
    assert status == 200 and answer["model_version"] == version and answer["parameters"] is None
    for path in (f"versions/{'0' * 16}", f"versions/{'0' * 16}/ready", f"versions/{'0' * 16}/infer", "ready"):
        method = "POST" if path.endswith("infer") else "GET"
        model = "other" if path == "ready" else name
        status, body = invoke(method, f"/v2/models/{model}/{path}", infer_body(live_bundle, rows(live_bundle, 1)))
        assert status == 404 and set(body) == {"error"}, (path, body)
    assert version in body["error"] or name in body["error"]


def test_the_stage_names_the_model_and_get_model_shows_the_name(
    live_bundle: Bundle, invoke_factory: Callable[[], Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe_name = model_name_of(live_bundle.manifest)
    assert invoke_factory()("GET", "/model")[1]["name"] == recipe_name, "unset: the recipe's last part"
    monkeypatch.setenv("MODEL_NAME", "flowers")
    invoke = invoke_factory()
    assert invoke("GET", "/model")[1]["name"] == "flowers"
    assert invoke("GET", "/v2/models/flowers")[1]["name"] == "flowers"
    status, answer = invoke("POST", "/v2/models/flowers/infer", infer_body(live_bundle, rows(live_bundle, 1)))
    assert status == 200 and answer["model_name"] == "flowers"
    status, body = invoke("GET", f"/v2/models/{recipe_name}/ready")
    assert status == 404 and "'flowers'" in body["error"]


def test_plan_b_answers_infer_as_it_answers_predict_flagged_in_the_parameters(
    invoke: Invoke, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(self: Predictor, batch: Any) -> Any:
        raise ModelUnavailable("runtime_error")

    monkeypatch.setattr(Predictor, "score", fails)
    name, instances = model_name_of(live_bundle.manifest), rows(live_bundle, 2)
    _, predicted = invoke("POST", "/predict", {"instances": instances})
    status, answer = invoke("POST", f"/v2/models/{name}/infer", infer_body(live_bundle, instances))
    assert status == 200 and answer["parameters"] == {"fallback": "runtime_error"}
    assert [p["fallback"] for p in predicted["predictions"]] == ["runtime_error"] * 2
    assert answer["outputs"][0]["data"] == [p["label"] for p in predicted["predictions"]]


def test_without_a_live_model_the_model_is_not_ready(invoke: Invoke) -> None:
    status, body = invoke("GET", "/v2/models/iris/ready")
    assert status == 503 and "no live model" in body["error"]


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        (
            lambda body: {**body, "inputs": [{**body["inputs"][0], "name": "nope"}, *body["inputs"][1:]]},
            422,
            "no feature",
        ),
        (lambda body: {**body, "inputs": [{**body["inputs"][0], "shape": [3]}, *body["inputs"][1:]]}, 422, "shape"),
        (lambda body: {**body, "outputs": [{"name": "logits"}]}, 422, "no output"),
        (lambda body: {"inputs": []}, 422, "inputs"),
        (lambda body: {**body, "inputs": [{**t, "datatype": "FP128"} for t in body["inputs"]]}, 422, "datatype"),
    ],
)
def test_infer_errors_are_the_protocols(
    invoke: Invoke, live_bundle: Bundle, change: Callable[[dict[str, Any]], Any], status: int, said: str
) -> None:
    name = model_name_of(live_bundle.manifest)
    answer = invoke("POST", f"/v2/models/{name}/infer", change(infer_body(live_bundle, rows(live_bundle, 2))))
    assert answer[0] == status and set(answer[1]) == {"error"} and said in answer[1]["error"], answer


def test_an_unknown_model_or_a_bad_body_is_a_protocol_error(invoke: Invoke, live_bundle: Bundle) -> None:
    assert invoke("GET", "/v2/models/other")[0] == 404
    status, body = invoke("POST", "/v2/models/other/infer", infer_body(live_bundle, rows(live_bundle, 1)))
    assert status == 404 and "serves" in body["error"]
    name = model_name_of(live_bundle.manifest)
    status, body = invoke("POST", f"/v2/models/{name}/infer", raw="{not json")
    assert status == 400 and set(body) == {"error"}
    too_many = infer_body(live_bundle, rows(live_bundle, 1) * 1001)
    status, body = invoke("POST", f"/v2/models/{name}/infer", too_many)
    assert status == 422 and "1001 rows" in body["error"]


# --- MLflow's inputs -------------------------------------------------------------------------------------


@SOME
@given(data=st.data())
def test_mlflow_inputs_in_every_form_answer_as_instances(invoke: Invoke, live_bundle: Bundle, data: Any) -> None:
    names = live_bundle.manifest.feature_spec.names
    instances = data.draw(
        st.lists(st.integers(0, 149).map(lambda i: example_row(live_bundle, i)), min_size=1, max_size=5)
    )
    _, expected = invoke("POST", "/predict", {"instances": instances})
    columns = {name: [row[name] for row in instances] for name in names}
    for inputs in (columns, instances, [[row[name] for name in names] for row in instances]):
        status, body = invoke("POST", "/predict", {"inputs": inputs})
        assert status == 200 and body["predictions"] == expected["predictions"], (inputs, body)


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ({"a": [1, 2], "b": [1]}, "same number"),
        ({}, "at least one column"),
        ([], "at least one row"),
        ([{"a": 1}, [1, 2]], "every row an object"),
        ([[1.0]], "values, one per feature"),
        ("rows", "inputs"),
    ],
)
def test_bad_mlflow_inputs_are_a_clear_422(invoke: Invoke, live_bundle: Bundle, inputs: Any, said: str) -> None:
    status, body = invoke("POST", "/predict", {"inputs": inputs})
    assert status == 422 and said in json.dumps(body), body


def test_mlflow_inputs_keep_the_row_limit_and_the_feature_spec(invoke: Invoke, live_bundle: Bundle) -> None:
    row = example_row(live_bundle)
    status, body = invoke("POST", "/predict", {"inputs": {name: [value] * 1001 for name, value in row.items()}})
    assert status == 422 and "the limit is 1000" in json.dumps(body)
    first = next(iter(row))
    status, body = invoke("POST", "/predict", {"inputs": {**{k: [v] for k, v in row.items()}, first: ["x"]}})
    assert status == 422 and first in json.dumps(body)


# --- the document and the route list ---------------------------------------------------------------------


def test_the_route_list_infra_reads_is_the_resolvers(invoke: Invoke, live_bundle: Bundle) -> None:
    _, document = invoke("GET", "/openapi.json")
    documented = {
        (method.upper(), path.lstrip("/")) for path, methods in document["paths"].items() for method in methods
    }
    undocumented = {("GET", "openapi.json"), ("GET", "docs")}
    assert {(route.method, route.path) for route in SERVED_ROUTES} == documented | undocumented


def test_every_route_documents_its_errors_and_rows_are_typed_by_the_live_model(
    invoke: Invoke, live_bundle: Bundle
) -> None:
    _, document = invoke("GET", "/openapi.json")
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            assert {"429", "500", "502"} <= statuses, (method, path)
            if "requestBody" in operation:
                assert statuses >= ERROR_STATUSES, (method, path, statuses)
            for status, answer in operation["responses"].items():
                assert "schema" in answer["content"]["application/json"], (method, path, status)
            if "503" in statuses:
                assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)
    instance = document["components"]["schemas"]["Instance"]
    spec = live_bundle.manifest.feature_spec
    assert list(instance["properties"]) == spec.names and instance["additionalProperties"] is False
    assert instance["required"] == [f.name for f in spec.features if f.required]
    for feature in spec.features:
        schema = instance["properties"][feature.name]
        assert "number" in schema["type"] and schema.get("minimum") == feature.valid_min
    for path in ("/predict", "/predict/async"):
        bodies = document["paths"][path]["post"]["requestBody"]["content"]
        assert set(bodies) == {"application/json", "text/csv"}, path
    example = document["paths"]["/predict"]["post"]["requestBody"]["content"]["text/csv"]["example"]
    status, answer = invoke("POST", "/predict", raw=example, headers={"Content-Type": "text/csv"})
    assert status == 200 and len(answer["predictions"]) == 1, answer
    shapes = document["components"]["schemas"]["PredictRequest"]["properties"]
    assert set(shapes) == {"instances", "dataframe_records", "dataframe_split", "inputs"}
    rows_schema = document["components"]["schemas"]["PredictRequest"]["properties"]["instances"]
    assert {"$ref": "#/components/schemas/Instance"} in [o.get("items") for o in rows_schema["anyOf"]]
