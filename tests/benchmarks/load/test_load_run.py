"""`python -m benchmarks.load`, run briefly: it passes on the local stack and fails on server errors.

Everything binds 127.0.0.1; the driver stops the stack it starts by its pid, and
each test stops the server it starts. Locust's virtual environment is built once
(.venv/load, reused while its requirements are unchanged).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load.__main__ import REQUIREMENTS
from benchmarks.load.plan import request_plan
from benchmarks.load.report import read_report
from benchmarks.tool_venv import PROJECT_ROOT, tool_venv
from functions.training.train import Bundle
from stage.settings import load_settings
from tests.conftest import Invoke

SPEC = {"features": [{"name": "x", "precision": 2, "train_min": 0, "train_max": 2, "impute": 1.0, "required": True}]}


@pytest.fixture(scope="module")
def load_venv() -> Path:
    return tool_venv("load", REQUIREMENTS, Path(sys.executable))


def run_driver(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks.load", "--dir", str(out), *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240, check=False)


def test_every_planned_request_gets_its_answer_from_the_handler(live_bundle: Bundle, invoke: Invoke) -> None:
    max_instances = load_settings("dev").inference.max_instances
    for kind in request_plan(live_bundle.manifest.feature_spec, max_instances=max_instances):
        for request in kind.requests[:3] if kind.requests[0].expected_status == 200 else kind.requests:
            status, body = invoke("POST", "/predict", raw=request.body, headers={"Content-Type": request.content_type})
            assert status == request.expected_status, (request.variant, body)
            if status == 200:
                assert len(body["predictions"]) == request.rows


def test_a_short_run_on_the_local_stack_has_no_server_errors(load_venv: Path, tmp_path: Path) -> None:
    # 32 clients connecting at once: more than a listen backlog of 5 holds (handshakes dropped, requests cut off).
    result = run_driver("--users", "32", "--seconds", "5", out=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed:" in result.stdout and "0 server errors" in result.stdout
    for header in ("| request kind", "| one row", "| 100 rows", "| bad request", "| all"):
        assert header in result.stdout
    report = read_report(tmp_path / "report.json")
    assert [k.kind for k in report.kinds] == ["one row", "100 rows", "bad request", "all"]
    for kind in report.kinds:
        assert kind.requests > 0 and kind.failures == 0, kind
        assert kind.requests_per_second > 0 and 0 < kind.p50_ms <= kind.p99_ms
    assert report.server_errors == 0
    assert "Stopped." in (tmp_path / "stack.log").read_text(), "the stack was stopped cleanly by its pid"


class _FailingApi(BaseHTTPRequestHandler):
    """GET /model answers a one-feature model; every POST gets a 500, or no answer at all."""

    protocol_version = "HTTP/1.1"
    hang_up = False

    def do_GET(self) -> None:
        self._answer(200, {"version": "failing", "feature_spec": SPEC})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.hang_up:
            self.close_connection = True
            return
        self._answer(500, {"message": "Internal server error"})

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["5xx", "no answer"])
def failing_api(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Api", (_FailingApi,), {"hang_up": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_server_errors_fail_the_run(load_venv: Path, failing_api: str, tmp_path: Path) -> None:
    result = run_driver("--url", failing_api, "--users", "2", "--seconds", "2", out=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED:" in result.stdout
    report = read_report(tmp_path / "report.json")
    assert report.server_errors > 0
    assert report.server_errors == report.total.failures == report.total.requests
    assert report.total.unexpected_answers == 0
