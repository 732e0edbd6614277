"""The local stack as a child process: `slipway up` on free loopback ports, ready when /health says so.

A process of its own, as `make run` serves it, so the load generator and the
stack do not share an interpreter (or its GIL). Stopped by its pid.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slipway.demo import free_port

HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """The local stack did not start, or did not become ready."""


@dataclass
class StackProcess:
    """A running `slipway up`; its terminal output (banner, access log) goes to `log_path`."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes]

    @classmethod
    def start(cls, *, stage: str, log_path: Path) -> StackProcess:
        port, aws_port = free_port(HOST), free_port(HOST)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
        command = [sys.executable, "-m", "slipway.cli", "up", "--stage", stage, "--host", HOST]
        process = subprocess.Popen(
            [*command, "--port", str(port), "--aws-port", str(aws_port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        return cls(process=process, url=f"http://{HOST}:{port}", log_path=log_path, _log=log)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Return once GET /health answers ready; raise StackError with the log's tail if it exits or times out."""
        deadline = time.monotonic() + timeout
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"slipway up exited with {self.process.returncode}:\n{self.log_tail()}")
            answer = health(self.url)
            if answer.get("status") == "ready":
                return
            time.sleep(0.25)
        last = json.dumps(answer) if answer else "no answer"
        raise StackError(f"{self.url}/health not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self) -> int:
        """Stop the stack by its pid: SIGTERM (which `slipway up` handles with a clean stop), then SIGKILL."""
        if self.process.poll() is None:
            # SIGTERM, not SIGINT: a child started from a non-interactive shell may inherit SIGINT ignored.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def health(url: str) -> dict[str, Any]:
    """GET /health as JSON, or {} while nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError, urllib.error.URLError):
        return {}
