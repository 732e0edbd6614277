"""A local stack for a test module: free loopback ports, started, and stopped with the environment it found."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slipway.demo import free_port
from slipway.local.stack import LocalStack


@contextlib.contextmanager
def running_stack(log_dir: Path, overrides: dict[str, Any] | None = None) -> Iterator[LocalStack]:
    """The embedded stack `make run` starts (with the stage's settings changed by `overrides`), on free ports of
    127.0.0.1; the environment restored after."""
    saved = dict(os.environ)
    local = LocalStack(port=free_port(), aws_port=free_port(), log_dir=log_dir, overrides=overrides or {})
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)


def http(method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """One JSON request to a local stack: the status and the parsed answer (errors included)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
