"""A local stand-in for the stage's front door: HTTP in, the front door's event to the real handler, HTTP out.

The event is the shape of the stage's api.type: a REST proxy event (rest), or payload format 2.0 (http,
function_url). A method the front door does not route (HEAD, OPTIONS, TRACE, CONNECT, and any other such as
QUERY) gets the front door's JSON answer, never the function: REST answers 403
{"message":"Missing Authentication Token"}, an HTTP API or function URL 404 {"message":"Not Found"}.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, front_door_event

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# API Gateway REST refuses bodies above 10 MB before the function sees them.
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
# The methods the front door passes to the function.
ROUTED_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
# What the front door answers a method it does not route, by api.type.
_UNROUTED = {
    "rest": (403, b'{"message":"Missing Authentication Token"}'),
    "http": (404, b'{"message":"Not Found"}'),
    "function_url": (404, b'{"message":"Not Found"}'),
}


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new clients overflows it, and the kernel
    # drops their handshakes (retried after 1 s; some requests are cut off). API Gateway takes them all.
    request_queue_size = socket.SOMAXCONN
    daemon_threads = True


class Gateway:
    """Serves one Lambda handler over HTTP on loopback, one invocation at a time, as a container would."""

    def __init__(
        self,
        handler: LambdaHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        function_log: IO[str] | None = None,
        access_log: Callable[[str], None] | None = None,
        front_door: str = "rest",
    ) -> None:
        if front_door not in _UNROUTED:
            raise ValueError(f"unknown front door {front_door!r}: {', '.join(_UNROUTED)}")
        self.front_door = front_door
        self._handler = handler
        self._lock = threading.Lock()
        self._function_log = function_log
        self._access_log = access_log
        self.server = _Server((host, port), self._request_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the handler with one event; its stdout (logs, EMF metrics) goes to the function log."""
        with self._lock:
            sink = self._function_log
            redirect = contextlib.redirect_stdout(sink) if sink is not None else contextlib.nullcontext()
            with redirect:
                response = self._handler(event, FakeLambdaContext())
            if sink is not None:
                sink.flush()
            return response

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle on, a keep-alive client's delayed ACK
            # holds every response's body back by ~40 ms.
            disable_nagle_algorithm = True

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > API_GATEWAY_MAX_BODY:
                    self._send(413, {"Content-Type": "application/json"}, b'{"message":"Request Too Long"}')
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else None
                split = urlsplit(self.path)
                request = HttpRequest(
                    self.command,
                    split.path,
                    body=body,
                    headers={name: value for name, value in self.headers.items()},
                    query=dict(parse_qsl(split.query)) or None,
                    source_ip=self.client_address[0],
                )
                event = front_door_event(gateway.front_door, request)
                try:
                    response = gateway.invoke(event)
                except Exception as exc:  # what API Gateway does when the function crashes
                    gateway._log(f"function error: {exc!r}")
                    self._send(502, {"Content-Type": "application/json"}, b'{"message":"Internal server error"}')
                    return
                payload = response.get("body") or ""
                data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
                headers = dict(response.get("headers") or {})
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                cookies = response.get("cookies") or []  # payload format 2.0
                self._send(int(response.get("statusCode", 200)), headers, data, cookies=cookies)

            def _send(self, status: int, headers: dict[str, str], data: bytes, cookies: Sequence[str] = ()) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                for cookie in cookies:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _unrouted(self) -> None:
                # The front door's answer to a method no route of the API defines.
                status, data = _UNROUTED[gateway.front_door]
                self._send(status, {"Content-Type": "application/json"}, b"" if self.command == "HEAD" else data)

            def __getattr__(self, name: str) -> Any:
                # http.server looks up do_<METHOD> and answers 501 in HTML when there is none: every method
                # the front door does not route (QUERY, or any name at all) gets its JSON answer instead.
                if name.startswith("do_"):
                    return self._relay if name[3:] in ROUTED_METHODS else self._unrouted
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                gateway._log(f"{self.address_string()} {format % args}")

        return Request

    def _log(self, line: str) -> None:
        if self._access_log is not None:
            self._access_log(line)
