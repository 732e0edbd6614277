"""Bodies that cannot become JSON text get a clear 4xx before routing; none reaches the resolver and raises.

Each of the first three raised in the handler before (ValueError, UnicodeDecodeError), which
API Gateway answers with a 502.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from functions.training.train import Bundle
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event
from tests.conftest import Invoke, example_row


def _body(bundle: Bundle) -> str:
    return json.dumps({"instances": [example_row(bundle)]})


def _refused(invoke: Invoke, status: int, rule: str, loc: list[str], **request: Any) -> dict[str, Any]:
    code, body = invoke("POST", "/predict", **request)
    assert code == status, body
    assert body["errors"][0]["type"] == rule and body["errors"][0]["loc"] == loc, body
    return body


def test_multipart_without_a_boundary_is_415(invoke: Invoke, live_bundle: Bundle) -> None:
    _refused(invoke, 415, "unsupported_content_type", ["header", "Content-Type"], raw="--x",
             headers={"Content-Type": "multipart/form-data"})  # fmt: skip


def test_a_compressed_body_is_415_naming_the_encoding(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _refused(invoke, 415, "unsupported_content_encoding", ["header", "Content-Encoding"],
                    raw=gzip.compress(_body(live_bundle).encode()), headers={"Content-Encoding": "gzip"})  # fmt: skip
    assert "send the body uncompressed" in body["message"]


def test_bytes_that_are_not_utf8_are_400_with_the_byte(invoke: Invoke, live_bundle: Bundle) -> None:
    body = _refused(invoke, 400, "invalid_encoding", ["body"], raw='{"instances": [{"a": "\xe9"}]}'.encode("latin-1"))
    assert "byte 22" in body["message"]


def test_a_declared_charset_is_honoured(invoke: Invoke, live_bundle: Bundle) -> None:
    latin = '{"instances": [{"caf\xe9": 1}]}'.encode("latin-1")
    headers = {"Content-Type": "application/json; charset=latin-1"}
    status, answer = invoke("POST", "/predict", raw=latin, headers=headers)
    assert status == 422 and "unknown feature 'caf\xe9'" in answer["message"], answer


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; Charset=UTF-8", "application/json;"])
def test_media_types_compare_case_insensitively(invoke: Invoke, live_bundle: Bundle, content_type: str) -> None:
    status, answer = invoke("POST", "/predict", raw=_body(live_bundle), headers={"Content-Type": content_type})
    assert status == 200, answer


@pytest.mark.parametrize(
    ("content_type", "rule"),
    [
        ("application/x-www-form-urlencoded", "unsupported_content_type"),
        ("text/plain", "unsupported_content_type"),
        ("application/json; charset=no-such-codec", "unsupported_charset"),
        # Codecs Python knows but that are not text encodings: bytes.decode raised LookupError (found by test_fuzz).
        ("application/json; charset=zlib", "unsupported_charset"),
        ("application/json; charset=base64", "unsupported_charset"),
        # Text codecs in which one text has many byte forms: a body a firewall read one way would read another here.
        ("application/json; charset=utf-7", "unsupported_charset"),
        ("application/json; charset=unicode_escape", "unsupported_charset"),
        ("application/json; charset=raw_unicode_escape", "unsupported_charset"),
        ("application/json; charset=punycode", "unsupported_charset"),
        ("application/json; charset=idna", "unsupported_charset"),
    ],
)
def test_other_media_types_and_unknown_charsets_are_415(
    invoke: Invoke, live_bundle: Bundle, content_type: str, rule: str
) -> None:
    _refused(invoke, 415, rule, ["header", "Content-Type"], raw="a=1", headers={"Content-Type": content_type})


@pytest.mark.parametrize("charset", ["UTF-16", "utf-16-le", "windows-1252", "ISO-8859-15", "shift_jis", "ascii"])
def test_real_text_encodings_are_read(invoke: Invoke, live_bundle: Bundle, charset: str) -> None:
    body = _body(live_bundle)
    status, answer = invoke(
        "POST", "/predict", raw=body.encode(charset), headers={"Content-Type": f"application/json; charset={charset}"}
    )
    assert status == 200, answer


def test_a_base64_body_is_decoded_and_invalid_base64_is_400(
    invoke: Invoke, live_bundle: Bundle, handler_module: Any
) -> None:
    event = proxy_event(HttpRequest("POST", "/predict", body=_body(live_bundle)))
    event["body"], event["isBase64Encoded"] = base64.b64encode(event["body"].encode()).decode(), True
    assert handler_module.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    event["body"] = "not base64!"
    response = handler_module.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 400 and json.loads(response["body"])["errors"][0]["type"] == "invalid_base64"


def test_a_refused_body_is_counted_as_an_invalid_request(invoke: Invoke, live_bundle: Bundle, capsys: Any) -> None:
    capsys.readouterr()
    invoke("POST", "/predict", raw=b"\xff\xfe", headers={"Content-Type": "application/json"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(line.get("InvalidRequests") == [1.0] for line in lines), lines
