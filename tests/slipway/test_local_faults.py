"""moto restarted, then emptied, under live HTTP traffic to the local stack: /predict never answers 5xx,
the local services keep running, and stopping the stack still works."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from moto.server import ThreadedMotoServer

from slipway.local.retrain_service import RetrainService
from slipway.local.stack import LocalStack, reset_moto
from tests.background import BackgroundLoop
from tests.slipway.stacks import running_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path / "logs") as local:
        yield local


class Traffic(BackgroundLoop):
    """One keep-alive client sending one-row /predict requests until stopped."""

    def __init__(self, url: str, row: dict[str, float]) -> None:
        super().__init__()
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._body = json.dumps({"instances": [row]})
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        self.errors: list[str] = []

    def loop(self) -> None:
        connection = HTTPConnection(self._host, self._port, timeout=30)
        while not self.stopped.is_set():
            try:
                connection.request("POST", "/predict", body=self._body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = json.loads(response.read())
            except Exception as exc:  # a dropped connection is a failure of the promise, not of the test
                self.errors.append(repr(exc))
                connection.close()
                connection = HTTPConnection(self._host, self._port, timeout=30)
                continue
            self.statuses[response.status] += 1
            self.versions[str(payload.get("model_version"))] += 1
            self.fallbacks[str(payload["predictions"][0]["fallback"])] += 1
        connection.close()


def test_predict_keeps_answering_while_moto_restarts_and_loses_its_state(stack: LocalStack) -> None:
    handler = sys.modules["functions.inference.handler"]
    handler.live_model._refresh_seconds = 0.05  # re-read the pointer all through the outage
    spec = handler.live_model.current().predictor.manifest.feature_spec
    row = {feature.name: feature.train_min for feature in spec.features}
    assert stack._moto is not None
    with Traffic(stack.url, row) as traffic:
        time.sleep(0.5)
        stack._moto.stop()  # moto goes away: connection refused on every S3 and SSM call
        time.sleep(1.5)
        stack._moto = ThreadedMotoServer(ip_address=stack.host, port=stack.aws_port, verbose=False)
        stack._moto.start()  # back, with its state
        time.sleep(1.0)
        reset_moto(stack.aws_endpoint)  # and now restarted empty: no pointer, no bundles
        time.sleep(1.5)

    assert traffic.errors == []
    assert set(traffic.statuses) == {200}, traffic.statuses
    assert sum(traffic.statuses.values()) > 50, "traffic ran all through the outage"
    assert set(traffic.versions) == {stack.live_version}, traffic.versions
    assert set(traffic.fallbacks) == {"None"}, "the loaded model answered every request, never plan B"
    retrain = stack.service(RetrainService)._thread
    assert retrain is not None and retrain.is_alive(), "the local retrain trigger outlives the outage"
    log = stack.function_log_path.read_text()
    assert "live pointer unreadable; keeping the last one" in log
