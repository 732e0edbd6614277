"""Shared fixtures: moto-backed AWS with the stage's resources, a trained example bundle, the handler."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.adapters import factory
from functions.core.registry import LivePointer, Registry
from functions.training.train import Bundle, load_recipe, load_table, train_bundle
from slipway.local import lambda_runtime
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event
from slipway.local.recipes import variant
from stage.environments import inference_environment
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import load_settings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def emulator_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stage synthesized once, with its real packages, for an emulator on this host."""
    from tests.assembly import emulator_synth

    outdir = tmp_path_factory.mktemp("cdk.out.emulator")
    emulator_synth("dev", outdir)
    return outdir


@pytest.fixture(scope="session")
def names() -> ResourceNames:
    return ResourceNames.of(load_settings("dev"), account=LOCAL_ACCOUNT, region=REGION)


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    """The example recipe trained once for the whole session."""
    return train_bundle(load_recipe())


@pytest.fixture(scope="session")
def good() -> Bundle:
    """A rollout candidate as good as the example: its recipe with another seed."""
    return train_bundle(variant(seed_offset=1))


@pytest.fixture(scope="session")
def bad() -> Bundle:
    """A rollout candidate trained on shuffled labels: the model a rollout must refuse."""
    return train_bundle(variant(seed_offset=2, shuffle_labels=True))


@pytest.fixture
def aws(names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with the stage's bucket and an empty live pointer, as the CDK app creates them."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    factory.reset_clients()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=names.artifacts_bucket)
        boto3.client("ssm").put_parameter(
            Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
        )
        yield
    factory.reset_clients()


@pytest.fixture
def registry(aws: None, names: ResourceNames) -> Registry:
    return factory.registry(names.artifacts_bucket, names.live_pointer_parameter)


@pytest.fixture
def live_bundle(registry: Registry, bundle: Bundle) -> Bundle:
    """The example bundle registered and promoted."""
    registry.register(bundle.manifest, bundle.onnx_bytes)
    registry.promote(bundle.version, "test")
    return bundle


@pytest.fixture
def handler_env(names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inference function's environment as the dev stage writes it (stage.environments)."""
    for variable, value in inference_environment(load_settings("dev"), names).items():
        if variable != "REQUESTS_QUEUE_URL":  # a test that queues jobs makes its queue and names it
            monkeypatch.setenv(variable, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")


Invoke = Callable[..., tuple[int, Any]]


@pytest.fixture
def invoke_factory(aws: None, handler_env: None) -> Callable[[], Invoke]:
    """Makes a cold container: the handler module imported afresh with the current environment.

    The returned callable sends one request through the real handler and answers (status, parsed body).
    """

    def cold_start() -> Invoke:
        module = lambda_runtime.cold_start("functions.inference.handler")

        def call(method: str, path: str, body: Any = None, *, raw: str | bytes | None = None, **kwargs: Any) -> Any:
            payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
            event = proxy_event(HttpRequest(method, path, body=payload, **kwargs))
            response = module.lambda_handler(event, FakeLambdaContext())
            return response["statusCode"], json.loads(response["body"])

        return call

    return cold_start


@pytest.fixture
def invoke(invoke_factory: Callable[[], Invoke], request: pytest.FixtureRequest) -> Invoke:
    """One cold container for the test, started after the test's model (if any) is live."""
    if "live_bundle" in request.fixturenames:
        request.getfixturevalue("live_bundle")  # the container loads the live model at init
    return invoke_factory()


@pytest.fixture
def handler_module(invoke: Invoke) -> Any:
    """The handler module behind `invoke` (to reach its live model or configuration)."""
    return sys.modules["functions.inference.handler"]


def example_row(bundle: Bundle, index: int = 0) -> dict[str, float]:
    """Row `index` of the example data, as a client would send it."""
    columns, _ = load_table(load_recipe())
    return {name: float(values[index]) for name, values in columns.items()}


os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")


# Test layers, by folder: `pytest -m unit` runs the fast AWS-free tests alone (make test-unit).
LAYERS = {
    "tests/functions/core/": "unit",
    "tests/functions/training/": "unit",
    "tests/benchmarks/load/test_load_run.py": "local",  # the local stack under locust
    "tests/benchmarks/": "unit",
    "tests/test_architecture.py": "unit",
    "tests/test_workflows.py": "unit",
    "tests/functions/": "handler",
    "tests/slipway/": "local",
    "tests/infra/": "infra",
    "tests/e2e/": "emulator",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.replace(os.sep, "/")
        layer = next((name for prefix, name in LAYERS.items() if path.startswith(prefix)), None)
        if layer:
            item.add_marker(layer)
