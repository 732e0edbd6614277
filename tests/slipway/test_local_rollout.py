"""Rollouts on the embedded stack `make run` starts, driven by the CLI, with HTTP traffic on 127.0.0.1.

`slipway canary V --percent 30` makes about 30 % of 1,000 answers come from V (each naming
it); `slipway shadow V` leaves every answer to live while `slipway monitor` reports the
agreement; `slipway rollout V` promotes a good candidate by itself and refuses one trained
on shuffled labels, the live model untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from functions.adapters import factory
from functions.core.registry import Registry
from functions.training.train import Bundle, load_recipe, load_table
from slipway.local.monitoring import SHIP_SECONDS
from slipway.local.stack import LocalStack
from tests.background import BackgroundLoop
from tests.slipway.stacks import running_stack

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("logs")) as local:
        sys.modules["functions.inference.handler"].live_model._refresh_seconds = 0.05  # pick pointer moves up at once
        yield local


@pytest.fixture(scope="module")
def registry(stack: LocalStack) -> Registry:
    return factory.registry(os.environ["ARTIFACTS_BUCKET"], os.environ["LIVE_POINTER_PARAMETER"])


@pytest.fixture(scope="module")
def good(registry: Registry, good: Bundle) -> Bundle:
    """The shared good candidate, registered in this stack."""
    registry.register(good.manifest, good.onnx_bytes)
    return good


@pytest.fixture(scope="module")
def bad(registry: Registry, bad: Bundle) -> Bundle:
    """The shared bad candidate, registered in this stack."""
    registry.register(bad.manifest, bad.onnx_bytes)
    return bad


def cli(stack: LocalStack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.aws_endpoint}
    return subprocess.run([sys.executable, "-m", "slipway.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


class Client:
    """One keep-alive connection to the local gateway, sending example rows."""

    def __init__(self, stack: LocalStack) -> None:
        address = urlsplit(stack.url)
        self.connection = HTTPConnection(address.hostname, address.port, timeout=30)
        columns, _ = load_table(load_recipe())
        count = len(next(iter(columns.values())))
        self.rows = [{n: float(v[i]) for n, v in columns.items()} for i in range(count)]
        self.sent = 0

    def predict(self, rows: int = 1, headers: dict[str, str] | None = None) -> dict[str, Any]:
        start = (self.sent * rows) % (len(self.rows) - rows)
        body = json.dumps({"instances": self.rows[start : start + rows]})
        self.connection.request("POST", "/predict", body, {"Content-Type": "application/json", **(headers or {})})
        response = self.connection.getresponse()
        self.sent += 1
        answer = json.loads(response.read())
        assert response.status == 200, answer
        return dict(answer)


def test_a_canary_of_30_percent_answers_about_30_percent_naming_itself(
    stack: LocalStack, registry: Registry, good: Bundle
) -> None:
    live = registry.live().version
    started = cli(stack, "canary", good.version, "--percent", "30")
    assert started.returncode == 0, started.stderr
    assert f"canary: {good.version} answers 30 % of requests" in started.stdout
    client = Client(stack)
    versions = [client.predict()["model_version"] for _ in range(1000)]
    share = versions.count(good.version) / len(versions)
    print(f"\ncanary 30 %: {share:.1%} of 1,000 answers from the candidate")
    assert set(versions) == {live, good.version} and 0.25 < share < 0.35
    sticky = {client.predict(headers={"X-Slipway-Key": "caller-42"})["model_version"] for _ in range(30)}
    assert len(sticky) == 1
    assert cli(stack, "stop-rollout").returncode == 0
    assert registry.live().version == live and registry.live().rollout is None


def test_a_shadow_leaves_every_answer_to_live_and_the_monitor_reports_agreement(
    stack: LocalStack, registry: Registry, good: Bundle
) -> None:
    live = registry.live().version
    assert cli(stack, "shadow", good.version).returncode == 0
    client = Client(stack)
    assert {client.predict(rows=5)["model_version"] for _ in range(100)} == {live}
    time.sleep(SHIP_SECONDS + 1)  # the local capture shipper's interval
    report = cli(stack, "monitor", "--hours", "1")
    assert report.returncode == 0, report.stderr
    [line] = [line for line in report.stdout.splitlines() if line.startswith("shadow:")]
    assert "rows scored by both" in line and "0 failed" in line, line
    agreement = float(line.split("label agreement ")[1].split("%")[0])
    assert agreement > 90, line
    assert cli(stack, "stop-rollout").returncode == 0


class Traffic(BackgroundLoop):
    """Five-row requests in the background while a rollout bakes."""

    def __init__(self, stack: LocalStack) -> None:
        super().__init__()
        self.client = Client(stack)
        self.answers: list[str] = []

    def loop(self) -> None:
        while not self.stopped.is_set():
            self.answers.append(self.client.predict(rows=5)["model_version"])


def test_a_rollout_promotes_a_good_candidate_and_refuses_a_bad_one_by_itself(
    stack: LocalStack, registry: Registry, good: Bundle, bad: Bundle
) -> None:
    live = registry.live().version
    with Traffic(stack) as traffic:
        refused = cli(stack, "rollout", bad.version, "--bake-seconds", "3", timeout=300)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "shadow: refuse" in refused.stdout and "labels differ" in refused.stdout
    assert registry.live().version == live and registry.live().rollout is None
    assert bad.version not in traffic.answers, "a shadow never answers"

    with Traffic(stack) as traffic:
        promoted = cli(stack, "rollout", good.version, "--bake-seconds", "3", timeout=300)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "shadow: promote" in promoted.stdout and "canary: promote" in promoted.stdout
    assert registry.live().version == good.version and registry.live().previous == live
    assert good.version in traffic.answers
