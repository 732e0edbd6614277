"""The embedded default end to end: moto on loopback, the example model live, HTTP through the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from functions.core.registry import LivePointer
from slipway.demo import free_port
from slipway.local.stack import LocalStack
from stage.settings import PROJECT_ROOT
from tests.slipway.stacks import http, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("logs")) as local:
        yield local


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.aws_endpoint}
    env.pop("AWS_ACCESS_KEY_ID", None)  # the CLI must reach the local stack without AWS credentials
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "slipway.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_serves_predictions_over_http(stack: LocalStack) -> None:
    from model.recipe import load_data

    columns, target = load_data()
    instances = [{name: float(values[i]) for name, values in columns.items()} for i in range(20)]
    status, body = http("POST", f"{stack.url}/predict", {"instances": instances})
    assert status == 200
    assert body["model_version"] == stack.live_version
    assert [p["label"] for p in body["predictions"]] == list(target[:20])


def test_bad_input_over_http_is_a_4xx_with_the_field(stack: LocalStack) -> None:
    assert http("POST", f"{stack.url}/predict", raw=b"{oops")[0] == 400
    status, body = http("POST", f"{stack.url}/predict", {"instances": [{"mean_radius": "big"}]})
    assert status == 422 and body["errors"][0]["loc"] == ["instances", 0, "mean_radius"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("TRACE", "/predict", {}, None, 403),
        ("OPTIONS", "/predict", {}, None, 403),
        ("HEAD", "/health", {}, None, 403),
        ("POST", "/predict", {"Content-Type": "multipart/form-data"}, b"--x", 415),
        ("POST", "/predict", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"\x1f\x8b\x08", 415),
        ("POST", "/predict", {"Content-Type": "application/json"}, b"\xff\xfe{}", 400),
    ],
)
def test_requests_api_gateway_would_refuse_are_a_4xx_over_http(
    stack: LocalStack, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int
) -> None:
    where = urlsplit(stack.url)
    connection = HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        assert connection.getresponse().status == status
    finally:
        connection.close()


def test_health_model_and_openapi_over_http(stack: LocalStack) -> None:
    assert http("GET", f"{stack.url}/health")[1]["status"] == "ready"
    assert http("GET", f"{stack.url}/model")[1]["version"] == stack.live_version
    assert "/predict" in http("GET", f"{stack.url}/openapi.json")[1]["paths"]


def test_function_logs_and_metrics_go_to_the_log_file(stack: LocalStack) -> None:
    http("POST", f"{stack.url}/predict", {"instances": [{"mean_radius": 14.0, "mean_texture": 19.0,
         "mean_perimeter": 90.0, "mean_area": 600.0, "mean_smoothness": 0.1}]})  # fmt: skip
    log = stack.function_log_path.read_text()
    assert '"Predictions":[1.0]' in log and "live model loaded" in log


def test_a_cold_process_answers_exactly_like_the_warm_container(stack: LocalStack) -> None:
    row = {"mean_radius": 12.3456, "mean_texture": 20.1, "mean_perimeter": 80.0, "mean_area": 470.0,
           "mean_smoothness": 0.0912, "worst_area": 900.0}  # fmt: skip
    status, warm = http("POST", f"{stack.url}/predict", {"instances": [row]})
    script = (
        "import json, sys\n"
        "from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event\n"
        "from functions.inference.handler import lambda_handler\n"
        "event = proxy_event(HttpRequest('POST', '/predict', body=sys.argv[1]))\n"
        "response = lambda_handler(event, FakeLambdaContext())\n"
        "sys.stderr.write(response['body'])\n"
    )
    cold = subprocess.run(
        [sys.executable, "-c", script, json.dumps({"instances": [row]})],
        env=dict(os.environ),  # the stack's function environment, pointed at its moto
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert status == 200 and json.loads(cold.stderr) == warm


def test_cli_reaches_the_stack_through_aws_endpoint_url(stack: LocalStack) -> None:
    listed = cli(stack, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert LivePointer.model_validate(document["live"]).version == stack.live_version
    assert [m["version"] for m in document["models"]] == [stack.live_version]
    assert document["models"][0]["data_up_to"], "the example model records how recent its data is"
    table = cli(stack, "models").stdout
    assert "data up to" in table.splitlines()[0] and f"* {stack.live_version}" in table, table


def test_cli_train_is_idempotent_and_bad_commands_fail_clearly(stack: LocalStack) -> None:
    trained = cli(stack, "train")
    assert trained.returncode == 0, trained.stderr
    assert f"trained {stack.live_version}" in trained.stdout and "already registered" in trained.stdout
    unknown = cli(stack, "promote", "0000", "--reason", "test")
    assert unknown.returncode == 1 and "unknown model version '0000'" in unknown.stderr
    nothing = cli(stack, "rollback")
    assert nothing.returncode == 1 and "nothing to roll back to" in nothing.stderr


def test_smoke_command_passes_against_the_stack(stack: LocalStack) -> None:
    result = cli(stack, "smoke", "--url", stack.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout


def test_unreachable_stack_is_a_clear_error(stack: LocalStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "slipway.cli", "models"],
        env={**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "could not be reached" in result.stderr


def test_slipway_up_serves_and_stops_cleanly_and_restarts_on_the_same_version(tmp_path: Path) -> None:
    versions = []
    for _ in range(2):
        port, aws_port = free_port(), free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "slipway.cli", "up", "--port", str(port), "--aws-port", str(aws_port)],
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            banner = _read_until(process, "Press Ctrl-C to stop.")
            assert f"http://127.0.0.1:{port}" in banner and f"AWS_ENDPOINT_URL=http://127.0.0.1:{aws_port}" in banner
            curl = next(line for line in banner.splitlines() if line.strip().startswith("curl"))
            body = curl.split("-d '", 1)[1].rstrip("'")
            status, answer = http("POST", f"http://127.0.0.1:{port}/predict", raw=body.encode())
            assert status == 200 and answer["predictions"][0]["fallback"] is None
            versions.append(answer["model_version"])
            process.send_signal(2)  # Ctrl-C
            out, _ = process.communicate(timeout=30)
            assert process.returncode == 0, out
            assert "Stopped." in out
        finally:
            if process.poll() is None:
                process.kill()
    assert versions[0] == versions[1]


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("slipway up exited early:\n" + "".join(lines))


def test_a_stage_that_declares_its_own_lake_still_runs_locally_from_load_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto holds none of the stage's own buckets: `make run` trains from the recipe instead of failing to list."""
    import slipway.local.stack as local_stack
    from functions.adapters import factory
    from functions.core import layout
    from functions.core.data_source import DataSource
    from stage.names import LOCAL_ACCOUNT, ResourceNames

    declared = local_stack.load_settings("dev").model_copy(
        update={"data": DataSource(kind="s3", uris=("s3://acme-lake/sales/",), target="churned")}
    )
    monkeypatch.setattr(local_stack, "load_settings", lambda stage: declared)
    names = ResourceNames.of(declared, account=LOCAL_ACCOUNT, region=declared.region)
    with running_stack(tmp_path) as local:
        store = factory.registry(names.artifacts_bucket, names.live_pointer_parameter).store
        lineage = store.get_manifest(local.live_version or "").lineage.data
    assert lineage is not None
    assert [o.uri for o in lineage.objects] == [f"s3://{names.artifacts_bucket}/{layout.RECIPE_SOURCE_KEY}"]
