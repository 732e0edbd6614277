"""The Lambda runtime's side of a handler, off AWS: a cold start, a context, API Gateway's proxy events.

The local stack, the tests and the benchmarks all drive the real handlers through
these, so they exercise exactly what Lambda and API Gateway would send.
"""

from __future__ import annotations

import base64
import importlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


def cold_start(module_name: str) -> Any:
    """Import a handler module afresh, as a new container does, with the environment as it is now.

    A new container has no SnapStart hooks yet: those that earlier imports registered are forgotten.
    """
    for hooks in _snap_start_hooks():
        hooks.clear()
    if module_name in sys.modules:
        return importlib.reload(sys.modules[module_name])
    return importlib.import_module(module_name)


def restore_from_snapshot() -> int:
    """What Lambda does around a SnapStart snapshot: the before-snapshot hooks, last registered first,
    then, in the restored container, the after-restore hooks in the order they were registered.

    Returns how many after-restore hooks ran.
    """
    before, after = _snap_start_hooks()
    for function, args, kwargs in reversed(before):
        function(*args, **kwargs)
    for function, args, kwargs in after:
        function(*args, **kwargs)
    return len(after)


def _snap_start_hooks() -> tuple[list[Any], list[Any]]:
    """The runtime's registries of SnapStart hooks (empty where snapshot_restore_py is not installed)."""
    try:
        import snapshot_restore_py
    except ModuleNotFoundError:
        return [], []
    return snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore()


@dataclass
class FakeLambdaContext:
    """The attributes of a LambdaContext that Powertools reads."""

    function_name: str = "slipway-local-inference"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:slipway-local-inference:live"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/slipway-local-inference"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def proxy_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    stage: str = "local",
) -> dict[str, Any]:
    """A REST API (v1) Lambda proxy event for one request."""
    request_id = str(uuid.uuid4())
    is_base64 = False
    if isinstance(body, bytes):
        raw = body
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(raw).decode("ascii"), True
    headers = {"Content-Type": "application/json", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }
