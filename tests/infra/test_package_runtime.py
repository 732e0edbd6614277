"""The trimmed inference package really runs on the Lambda runtime's Python.

The package is built exactly as for deployment, but for this machine's
architecture so that it can be executed here, then the real handler scores
rows from it under Python 3.12 against moto: this catches a trim that removes
something imported at run time, or a wheel built for the wrong interpreter.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.registry import LivePointer, Registry
from functions.training.train import Bundle
from infra.bundling import build_inference_package, find_runtime_interpreter
from slipway.environments import inference_environment
from slipway.local.stack import reset_moto
from slipway.names import LOCAL_ACCOUNT, ResourceNames
from slipway.settings import load_settings
from tests.conftest import example_row

RUNTIME_PYTHON = "3.12"
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]


@pytest.fixture(scope="module")
def interpreter() -> Path:
    found = find_runtime_interpreter(RUNTIME_PYTHON)
    if found is None:
        pytest.skip(f"no Python {RUNTIME_PYTHON} interpreter on this machine to run the package with")
    return found


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    reset_moto(endpoint)
    yield endpoint
    server.stop()


def test_package_scores_rows_under_the_runtime_python(
    interpreter: Path, moto_endpoint: str, bundle: Bundle, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    build_inference_package(package, architecture=HOST_ARCH, runtime=f"python{RUNTIME_PYTHON}")
    assert not list(package.glob("onnxruntime/capi/libonnxruntime.so*"))
    # The Lambda runtime provides boto3; install it beside the package for this run only.
    runtime_libs = tmp_path / "runtime"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
         str(runtime_libs), "--python-version", RUNTIME_PYTHON, "--only-binary=:all:", "boto3"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip

    settings = load_settings("dev")
    names = ResourceNames.of(settings, account=LOCAL_ACCOUNT, region=settings.region)
    clients = {
        service: boto3.client(service, endpoint_url=moto_endpoint, region_name=settings.region,
                              aws_access_key_id="local", aws_secret_access_key="local")
        for service in ("s3", "ssm")
    }  # fmt: skip
    clients["s3"].create_bucket(Bucket=names.artifacts_bucket)
    clients["ssm"].put_parameter(
        Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
    )
    registry = Registry(
        S3ModelStore(clients["s3"], names.artifacts_bucket),
        SsmPointerStore(clients["ssm"], names.live_pointer_parameter),
    )
    registry.register(bundle.manifest, bundle.onnx_bytes)
    registry.promote(bundle.version, "package test")

    rows = [example_row(bundle, i) for i in range(5)]
    script = (
        "import json, sys\n"
        "from functions.inference.handler import lambda_handler\n"
        "event = {'httpMethod': 'POST', 'path': '/predict', 'resource': '/predict', 'body': sys.argv[1],\n"
        "         'headers': {'Content-Type': 'application/json'}, 'requestContext': {'requestId': 'r1'}}\n"
        "class Context:\n"
        "    function_name, memory_limit_in_mb, aws_request_id = 'f', 1024, 'r1'\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:f'\n"
        "response = lambda_handler(event, Context())\n"
        "print('RESULT ' + json.dumps({'version': sys.version_info[:2], 'response': response}))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{package}{os.pathsep}{runtime_libs}",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_TRACE_DISABLED": "1",
        **inference_environment(settings, names),
    }
    result = subprocess.run(
        [str(interpreter), "-s", "-c", script, json.dumps({"instances": rows})],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    outcome = json.loads(line.removeprefix("RESULT "))
    assert outcome["version"] == [3, 12]
    assert outcome["response"]["statusCode"] == 200, outcome
    body = json.loads(outcome["response"]["body"])
    assert body["model_version"] == bundle.version
    assert [p["fallback"] for p in body["predictions"]] == [None] * 5

    from functions.core.predictor import Predictor

    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    assert body["predictions"] == predictor.score(predictor.encode(rows))
