"""A local stand-in for API Gateway: HTTP in, a REST proxy event to the real handler, HTTP out."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from slipway.local.lambda_runtime import FakeLambdaContext, proxy_event

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# API Gateway REST refuses bodies above 10 MB before the function sees them.
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024


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
    ) -> None:
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
                event = proxy_event(
                    self.command,
                    split.path,
                    body=body,
                    headers={name: value for name, value in self.headers.items()},
                    query=dict(parse_qsl(split.query)) or None,
                    source_ip=self.client_address[0],
                )
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
                self._send(int(response.get("statusCode", 200)), headers, data)

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _unrouted(self) -> None:
                # API Gateway's answer to a method no resource of the API defines.
                data = b"" if self.command == "HEAD" else b'{"message":"Missing Authentication Token"}'
                self._send(403, {"Content-Type": "application/json"}, data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay  # noqa: N815
            do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _unrouted  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                gateway._log(f"{self.address_string()} {format % args}")

        return Request

    def _log(self, line: str) -> None:
        if self._access_log is not None:
            self._access_log(line)
