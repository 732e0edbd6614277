"""The Lambda runtime's side of a handler, off AWS: a cold start, a context, the front door's events
(API Gateway REST proxy events, and payload format 2.0 for an HTTP API or a function URL).

The local stack, the tests and the benchmarks all drive the real handlers through
these, so they exercise exactly what Lambda and API Gateway would send.
"""

from __future__ import annotations

import base64
import importlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


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


@dataclass(frozen=True)
class HttpRequest:
    """One request as a client sends it, before a front door turns it into its function's event."""

    method: str
    path: str
    body: str | bytes | None = None
    headers: dict[str, str] | None = None
    query: dict[str, str] | None = None
    source_ip: str = "127.0.0.1"

    def event_body(self) -> tuple[str | None, bool]:
        """The event's body and isBase64Encoded: text as it is, bytes that are not UTF-8 as base64."""
        if not isinstance(self.body, bytes):
            return self.body, False
        try:
            return self.body.decode("utf-8"), False
        except UnicodeDecodeError:
            return base64.b64encode(self.body).decode("ascii"), True


def front_door_event(front_door: str, request: HttpRequest) -> dict[str, Any]:
    """The event the front door of type `front_door` (a stage's api.type) sends for `request`."""
    builders: dict[str, Callable[[HttpRequest], dict[str, Any]]] = {
        "rest": proxy_event,
        "http": http_event,
        "function_url": http_event,
    }
    build = builders.get(front_door)
    if build is None:
        raise ValueError(f"unknown front door {front_door!r}: rest, http or function_url")
    return build(request)


def http_event(request: HttpRequest) -> dict[str, Any]:
    """A payload format 2.0 event (HTTP API on its `$default` stage, or a function URL) for one request.

    As AWS sends them: header names in lower case, repeated values joined by commas, cookies apart.
    """
    text, is_base64 = request.event_body()
    lowered: dict[str, str] = {}
    for name, value in {"content-type": "application/json", **(request.headers or {})}.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered and key != "content-type" else value
    cookies = lowered.pop("cookie", None)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": urlencode(request.query or {}),
        "headers": lowered,
        "queryStringParameters": request.query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": request.method.upper(),
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = [cookie.strip() for cookie in cookies.split(";")]
    return event


def proxy_event(request: HttpRequest, *, stage: str = "local") -> dict[str, Any]:
    """A REST API (v1) Lambda proxy event for one request."""
    body, is_base64 = request.event_body()
    method, path, query = request.method.upper(), request.path, request.query
    headers = {"Content-Type": "application/json", **(request.headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.source_ip, "userAgent": headers.get("User-Agent", "")},
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }
