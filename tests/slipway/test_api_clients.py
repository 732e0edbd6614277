"""The local stack's API as tools written elsewhere see it: a client generated from its /openapi.json
(openapi-python-client), the document fuzzed against the running API (schemathesis), and the Open Inference
Protocol's own client (tritonclient). Plus what the local gateway answers a method no front door routes.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slipway.demo import free_port
from slipway.local.gateway import Gateway
from slipway.local.stack import LocalStack
from tests.conftest import example_row
from tests.slipway.stacks import http, running_stack

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("logs")) as local:
        yield local


def rows(stack: LocalStack, count: int) -> list[dict[str, Any]]:
    _, model = http("GET", f"{stack.url}/model")
    names = [feature["name"] for feature in model["feature_spec"]["features"]]
    return [{name: example_row(None, i)[name] for name in names} for i in range(count)]  # type: ignore[arg-type]


def model_name(stack: LocalStack) -> str:
    assert stack.settings is not None
    return stack.settings.recipe.rsplit(".", 1)[-1]


def test_tritonclient_infers_what_predict_answers(stack: LocalStack) -> None:
    import tritonclient.http as triton

    instances = rows(stack, 4)
    _, predicted = http("POST", f"{stack.url}/predict", {"instances": instances})
    client = triton.InferenceServerClient(url=stack.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        metadata = client.get_model_metadata(model_name(stack))
        names = [tensor["name"] for tensor in metadata["inputs"]]
        assert names == list(instances[0])
        inputs = []
        for name in names:
            tensor = triton.InferInput(name, [len(instances)], "FP64")
            tensor.set_data_from_numpy(np.array([row[name] for row in instances]), binary_data=False)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("predictions", "probabilities")]
        result = client.infer(model_name(stack), inputs, outputs=outputs)
        # The version the metadata names can be asked for, and pinned: it answers and says so.
        (version,) = metadata["versions"]
        assert client.is_model_ready(model_name(stack)) and client.is_model_ready(model_name(stack), version)
        assert not client.is_model_ready(model_name(stack), "0" * 16)
        assert client.get_model_metadata(model_name(stack), version) == metadata
        pinned = client.infer(model_name(stack), inputs, model_version=version, outputs=outputs)
        assert pinned.get_response()["model_version"] == version
        np.testing.assert_array_equal(pinned.as_numpy("probabilities"), result.as_numpy("probabilities"))
    finally:
        client.close()
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predictions")]
    assert labels == [p["label"] for p in predicted["predictions"]]
    classes = next(o for o in metadata["outputs"] if o["name"] == "probabilities")["shape"][1]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(instances), classes)
    expected = [list(p["probabilities"].values()) for p in predicted["predictions"]]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-9)


def test_a_generated_client_parses_answers_and_errors(stack: LocalStack, tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    _, schema = http("GET", f"{stack.url}/openapi.json")
    document.write_text(json.dumps(schema))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": [], "package_name_override": "slipway_client"}))
    generated = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document), "--config", str(config),
         "--output-path", str(tmp_path / "client"), "--meta", "none"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # Its one warning: it has no text/csv body type (the rows' CSV body), so it generates the JSON body alone.
    warnings = generated.stdout.split("WARNING")[1:]
    assert all("Unsupported content type text/csv" in warning for warning in warnings), generated.stdout
    assert "Warning" not in generated.stdout, generated.stdout
    sys.path.insert(0, str(tmp_path / "client" / ".."))
    try:
        client_module = importlib.import_module("client")
        models = importlib.import_module("client.models")
    finally:
        sys.path.pop(0)
    predict = importlib.import_module("client.api.default.predict_predict_post")
    client = client_module.Client(base_url=stack.url)
    instance = models.Instance.from_dict(rows(stack, 1)[0])  # the live model's features are the client's fields
    ok = predict.sync_detailed(client=client, body=models.PredictRequest(instances=[instance]))
    assert ok.status_code == 200 and isinstance(ok.parsed, models.PredictResponse)
    assert ok.parsed.predictions[0].label is not None
    bad = predict.sync_detailed(client=client, body=models.PredictRequest.from_dict({"instances": []}))
    assert bad.status_code == 422 and isinstance(bad.parsed, models.ErrorBody) and bad.parsed.message


def test_schemathesis_finds_no_undocumented_status_or_server_error(stack: LocalStack, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{stack.url}/openapi.json",
         "--checks", "status_code_conformance,response_schema_conformance,content_type_conformance,not_a_server_error",
         "--max-examples", "8", "--max-time", "45", "--seed", "1", "--generation-deterministic",
         "--workers", "1", "--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--no-color"],
        capture_output=True, text=True, timeout=400, check=False, cwd=tmp_path,  # its .schemathesis/ goes there
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    _, document = http("GET", f"{stack.url}/openapi.json")
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in run.stdout and " passed" in run.stdout, run.stdout[-3000:]


@pytest.mark.parametrize(("front_door", "status"), [("rest", 403), ("http", 404), ("function_url", 404)])
def test_a_method_no_front_door_routes_gets_its_json_answer(front_door: str, status: int) -> None:
    def never(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise AssertionError(f"the function was called: {event}")

    gateway = Gateway(never, port=free_port(), front_door=front_door)
    gateway.start()
    try:
        for method in ("QUERY", "OPTIONS", "BREW"):
            answer = http(method, f"{gateway.url}/predict", {"instances": []})
            assert answer[0] == status and isinstance(answer[1]["message"], str), (method, answer)
    finally:
        gateway.stop()


def test_the_gateway_sends_payload_format_2_to_an_http_api_function(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}", "cookies": ["a=b"]}

    gateway = Gateway(echo, port=free_port(), front_door="http")
    gateway.start()
    try:
        assert http("POST", f"{gateway.url}/predict?x=1", {"instances": []}) == (200, {})
    finally:
        gateway.stop()
    (event,) = seen
    assert event["version"] == "2.0" and event["rawPath"] == "/predict" and event["rawQueryString"] == "x=1"
    assert event["requestContext"]["http"]["method"] == "POST" and event["headers"]["content-type"]
    assert "httpMethod" not in event and "multiValueHeaders" not in event


def test_an_http_api_stack_serves_the_same_api(tmp_path: Path) -> None:
    # Last in the module: a second stack re-imports the handler module that the module's stack serves.
    with running_stack(tmp_path, {"api": {"type": "http", "auth": "iam"}}) as http_stack:
        instances = rows(http_stack, 2)
        status, answer = http("POST", f"{http_stack.url}/predict", {"inputs": instances})
        assert status == 200 and len(answer["predictions"]) == 2
        name = model_name(http_stack)
        assert http("GET", f"{http_stack.url}/v2/models/{name}")[0] == 200
        assert http("QUERY", f"{http_stack.url}/predict")[0] == 404
