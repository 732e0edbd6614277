"""Generated API Gateway proxy events through the real inference handler: never a 5xx, never an exception.

Two sources of events. From the handler's own OpenAPI document: bodies for each
operation that fit its schema (and, for rows, the live feature spec), then broken
on purpose (wrong types, missing and extra fields, huge and non-finite numbers,
unicode, deep nesting, emptiness). From raw bytes: any body, base64 or not, under
any Content-Type, Content-Encoding and charset, any method, path and query string,
headers in any case or null. Every 4xx must be the project's ErrorBody with a message.

Reproducible: derandomized, no example database, no deadline.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.inference.schemas import ErrorBody
from functions.inference.v2_routes import is_v2_path
from functions.training.train import Bundle
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, proxy_event
from tests.conftest import example_row

HANDLER_MODULE = "functions.inference.handler"
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
Json = Any


@dataclass(frozen=True)
class Api:
    """A cold inference container with a live model and async configured, and what it publishes of itself."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    document: dict[str, Any]
    features: list[dict[str, Any]]
    example: dict[str, float]

    def operations(self) -> list[Operation]:
        """Each operation of the document (and the document itself), with a strategy for its body."""
        rows = feature_rows(self.features)
        found = [Operation("GET", "/openapi.json", None)]
        for path, methods in self.document["paths"].items():
            for method, operation in methods.items():
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                body = None if schema is None else from_schema(schema, self.document)
                if body is not None and path.startswith("/predict"):
                    # The schema leaves rows free-form: the feature spec says what a good row is.
                    body = body | st.fixed_dictionaries({"instances": st.lists(rows, min_size=1, max_size=3)})
                found.append(Operation(method.upper(), path, body))
        return found


@pytest.fixture
def api(live_bundle: Bundle, handler_env: None, requests_queue: str) -> Api:
    module = cold_start(HANDLER_MODULE)
    document = _answer(module.lambda_handler, proxy_event(HttpRequest("GET", "/openapi.json")))
    model = _answer(module.lambda_handler, proxy_event(HttpRequest("GET", "/model")))
    return Api(module.lambda_handler, document, model["feature_spec"]["features"], example_row(live_bundle))


def _answer(handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> Any:
    response = handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


# --- the invariant -------------------------------------------------------------------------------


def check(api: Api, event: dict[str, Any]) -> int:
    """Send `event`; the answer is a proxy response below 500, and a 4xx is an ErrorBody with a message
    (`{"error": ...}` on the Open Inference Protocol's routes)."""
    response = api.handler(event, FakeLambdaContext())
    status = response["statusCode"]
    assert isinstance(status, int) and 200 <= status < 500, (status, response.get("body"))
    assert isinstance(response["body"], str)
    if status >= 400 and is_v2_path(str(event.get("path"))):  # the Open Inference Protocol's error shape
        assert set(json.loads(response["body"])) == {"error"}, response["body"]
    elif status >= 400:
        body = json.loads(response["body"])
        assert isinstance(body, dict) and set(body) <= {"message", "errors"}, body
        assert ErrorBody.model_validate(body).message, body
    return int(status)


def _event(method: str, path: str, **fields: Any) -> dict[str, Any]:
    """A REST API proxy event as API Gateway builds it, its top-level `fields` (body, headers, multiValueHeaders,
    ...) as given: none filled in."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": None,
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/fuzz{path}",
            "stage": "fuzz",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": 0,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "fuzz"},
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "fuzz",
        },
        "body": None,
        "isBase64Encoded": False,
        **fields,
    }


# --- JSON values, and the ways a client breaks them ------------------------------------------------

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
UNICODE = st.text(st.characters(codec=None) | SURROGATES, max_size=12) | st.sampled_from(
    ["", "\x00", "\u202e", "\ufeff", "é", "\U0001f600", "\ud800", "mean_radius\x00", "NaN", "Infinity", "-Infinity"]
)
HUGE = st.sampled_from(
    [10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: json.dumps writes them as literals
    | HUGE
    | UNICODE
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(UNICODE, children, max_size=4),
    max_leaves=12,
)


def _nested(depth: int, leaf: Json, *, as_object: bool) -> Json:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_object else [value]
    return value


# Deeper nesting than Python's recursion limit is made in the text (json_text), not as objects.
DEEP = st.builds(_nested, st.sampled_from([64, 500]), SCALARS, as_object=st.booleans())
REPLACEMENTS: st.SearchStrategy[Json] = (
    JSON_VALUES | HUGE | UNICODE | DEEP | st.sampled_from([{}, [], "", 0, None, True])
)


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The locations in `value` down to eight levels, the root first."""
    found = [prefix]
    if len(prefix) >= 8:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:8]):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Json, path: tuple[Any, ...], new: Callable[[Json], Json]) -> Json:
    if not path:
        return new(value)
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], tuple(rest), new)
    return copy


_DELETE = object()


def _without_deleted(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _without_deleted(v) for k, v in value.items() if v is not _DELETE}
    if isinstance(value, list):
        return [_without_deleted(v) for v in value if v is not _DELETE]
    return value


def _to(new: Json) -> Callable[[Json], Json]:
    return lambda _: new


def _with_extra(key: str, extra: Json) -> Callable[[Json], Json]:
    return lambda node: {**node, key: extra} if isinstance(node, dict) else [node, extra]


def _emptied(node: Json) -> Json:
    return type(node)() if isinstance(node, (dict, list, str)) else None


def _repeated(count: int) -> Callable[[Json], Json]:
    return lambda node: node * count if isinstance(node, list) else [node] * count


@st.composite
def mutated(draw: st.DrawFn, value: Json) -> Json:
    """`value` with up to three locations replaced, removed, extended, emptied or repeated."""
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(value)))
        operation = draw(st.sampled_from(["replace", "delete", "extra", "empty", "repeat"]))
        if operation == "replace" or (operation == "delete" and not path):
            value = _replace(value, path, _to(draw(REPLACEMENTS)))
        elif operation == "delete":
            value = _without_deleted(_replace(value, path, _to(_DELETE)))
        elif operation == "extra":
            value = _replace(value, path, _with_extra(draw(UNICODE), draw(JSON_VALUES)))
        elif operation == "empty":
            value = _replace(value, path, _emptied)
        else:  # one list far over any limit, or an element repeated
            value = _replace(value, path, _repeated(draw(st.sampled_from([2, 1001]))))
    return value


@st.composite
def json_text(draw: st.DrawFn, value: Json) -> str:
    """`value` as the text a client sends: usually valid JSON, sometimes cut short or padded."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    shapes = ["as is"] * 6 + ["truncated", "bom", "padded", "two documents", "nested deep", "long integer", "surrogate"]
    shape = draw(st.sampled_from(shapes))
    if shape == "truncated" and text:
        return text[: draw(st.integers(0, len(text) - 1))]
    if shape == "nested deep":  # past any parser's recursion limit, still well under the size limit
        depth = draw(st.sampled_from([1_100, 5_000, 100_000]))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opening * depth + text + closing * depth
    if shape == "surrogate" and '"' in text:  # half a pair, escaped: JSON's grammar allows it, Unicode does not
        quotes = [i for i, c in enumerate(text) if c == '"']
        at = quotes[draw(st.integers(0, len(quotes) - 1))] + 1
        return text[:at] + draw(st.sampled_from(["\\ud800", "\\udfff", "\\uDBFF"])) + text[at:]
    if shape == "long integer":  # more digits than Python's int() converts (json.dumps cannot write one)
        number = draw(st.sampled_from(["", "-"])) + "9" * draw(st.sampled_from([4300, 4301, 100_000]))
        return text.replace("0", number, 1) if "0" in text else f'{{"instances": [{{"mean_radius": {number}}}]}}'
    return {"bom": "\ufeff" + text, "padded": f" \n\t{text}\r\n", "two documents": f"{text} {text}"}.get(shape, text)


# --- bodies from the OpenAPI document --------------------------------------------------------------


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def from_schema(schema: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Json]:
    """Values that fit a (pydantic-generated) JSON schema; sizes kept small, bounds kept."""
    schema = _resolve(schema, document)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(option, document) for option in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields = {name: from_schema(sub, document) for name, sub in properties.items()}
        fixed = st.fixed_dictionaries(
            {n: s for n, s in fields.items() if n in required},
            optional={n: s for n, s in fields.items() if n not in required},
        )
        extra = schema.get("additionalProperties")
        if properties or extra is False:
            return fixed
        return st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)
    if kind == "array":
        low = int(schema.get("minItems", 0))
        return st.lists(from_schema(schema.get("items", {}), document), min_size=low, max_size=low + 3)
    if kind == "string":
        low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 20))
        return st.text(min_size=low, max_size=max(low, min(high, 20)))
    if kind in ("number", "integer"):
        least, most = schema.get("minimum"), schema.get("maximum")
        if kind == "integer":
            return st.integers(None if least is None else int(least), None if most is None else int(most))
        return st.floats(least, most, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_VALUES


def feature_rows(features: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Json]]:
    """Rows the live feature spec accepts (optional features sometimes left out, to be imputed)."""

    def value(feature: dict[str, Any]) -> st.SearchStrategy[Json]:
        if feature.get("categories"):
            return st.sampled_from(feature["categories"])
        low, high = feature.get("valid_min"), feature.get("valid_max")
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)

    return st.fixed_dictionaries(
        {f["name"]: value(f) for f in features if f.get("required")},
        optional={f["name"]: value(f) for f in features if not f.get("required")},
    )


JOB_IDS = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.text(max_size=40),
    st.sampled_from(["", "..", "%2e%2e", "../../model", "0" * 33, "A" * 32, "%00", "a/b"]),
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    body: st.SearchStrategy[Json] | None


@st.composite
def documented_events(draw: st.DrawFn, operations: list[Operation]) -> dict[str, Any]:
    operation = draw(st.sampled_from(operations))
    path = operation.path
    if "{job_id}" in path:
        path = path.replace("{job_id}", draw(JOB_IDS))
    body = None
    if operation.body is not None:
        body = draw(json_text(draw(mutated(draw(operation.body)))))
    return proxy_event(HttpRequest(operation.method, path, body=body, headers={"Accept": "application/json"}))


# --- events from raw bytes -------------------------------------------------------------------------


@st.composite
def any_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=True))


def cased(options: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(options).flatmap(any_case)


CHARSETS = [
    "utf-8", "UTF8", "latin-1", "utf-16", "utf-32", "ascii", "cp037", "utf-7", "shift_jis", "gb18030",
    "idna", "punycode", "raw_unicode_escape", "unicode_escape", "uu", "base64", "hex", "zlib", "bz2",
    "rot13", "quopri", "mbcs", "no-such-codec", "", '"utf-8"',
]  # fmt: skip
MEDIA_TYPES = [
    "application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded", "application/octet-stream", "application/json-patch+json",
    "application/vnd.api+json", "*/*", "", ";", "application/json;;", "application/json; charset",
]  # fmt: skip
CONTENT_TYPES = st.one_of(
    cased(MEDIA_TYPES),
    st.builds("{}; charset={}".format, cased(["application/json", "application/json", "text/plain"]), cased(CHARSETS)),
    st.builds("application/json;{}".format, st.text(max_size=20)),
    st.text(max_size=30),
)
CONTENT_ENCODINGS = st.one_of(cased(["identity", "gzip", "br", "deflate", "x-gzip", "", " identity ", "gzip, br"]),
                              st.text(max_size=10))  # fmt: skip
HEADER_NAMES = st.one_of(
    cased(["Content-Type", "Content-Encoding", "Accept", "X-Api-Key", "Host", "Content-Length", "X-Request-Id"]),
    st.text(max_size=12),
)
METHODS = st.one_of(
    cased(["POST", "PUT", "PATCH"]),  # the methods whose body is read
    cased(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]),
    st.sampled_from(["", "BREW", "PROPFIND", "P O S T", "POST\x00"]),
    st.text(max_size=8),
)
ODD_PATHS = [
    "/", "", "//predict", "/predict/", "/predict/../model", "/%2e%2e/model", "/predict%2Fasync",
    "/predict/async/../../feedback", "/predict?x=1", "/predict#frag", "/\x00", "/predict/async/%00",
    "/" + "a" * 5000, "/é", "/predict/async/" + "f" * 32, "/../../../../etc/passwd",
]  # fmt: skip
PATHS = st.one_of(
    cased(["/predict", "/predict/async", "/feedback", "/model", "/health", "/openapi.json", "/predict/async/x"]),
    st.sampled_from(ODD_PATHS),
    st.builds("/{}".format, st.text(max_size=30)),
)


@st.composite
def header_maps(draw: st.DrawFn) -> dict[str, Any]:
    """An event's headers and multiValueHeaders: null, agreeing, or each its own."""
    if draw(st.integers(0, 9)) == 0:
        return {"headers": None, "multiValueHeaders": None}
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers[draw(cased(["Content-Type"]))] = draw(CONTENT_TYPES)
    if draw(st.integers(0, 3)) == 0:
        headers[draw(cased(["Content-Encoding"]))] = draw(CONTENT_ENCODINGS)
    headers |= draw(st.dictionaries(HEADER_NAMES, st.text(max_size=20) | CONTENT_TYPES, max_size=3))
    shape = draw(st.sampled_from(["agree", "agree", "null", "own"]))
    if shape == "null":
        multi = None
    elif shape == "own":
        multi = draw(st.dictionaries(HEADER_NAMES, st.lists(CONTENT_TYPES, max_size=3), max_size=3))
    else:
        multi = {k: [v] for k, v in headers.items()}
    return {"headers": headers, "multiValueHeaders": multi}


@st.composite
def raw_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """An event's body and isBase64Encoded: bytes as base64, text as is, or text wrongly marked base64."""
    kind = draw(st.sampled_from(["bytes as base64", "text", "text marked base64", "none", "empty"]))
    if kind == "none":
        return {"body": None, "isBase64Encoded": draw(st.booleans())}
    if kind == "empty":
        return {"body": "", "isBase64Encoded": draw(st.booleans())}
    if kind == "bytes as base64":
        data = draw(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
        return {"body": base64.b64encode(data).decode(), "isBase64Encoded": True}
    text = draw(st.text(st.characters(codec=None) | SURROGATES, max_size=200) | JSON_VALUES.map(json.dumps))
    return {"body": text, "isBase64Encoded": kind == "text marked base64"}


@st.composite
def query_maps(draw: st.DrawFn) -> dict[str, Any]:
    """An event's queryStringParameters and multiValueQueryStringParameters: both null, or each name's first value
    and then all of them."""
    query = draw(st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3))
    multi = None
    if query is not None:
        multi = {k: [v, *draw(st.lists(st.text(max_size=5), max_size=2))] for k, v in query.items()}
    return {"queryStringParameters": query, "multiValueQueryStringParameters": multi}


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(raw_bodies()) | draw(header_maps()) | draw(query_maps())
    return _event(draw(METHODS), draw(PATHS), **fields)


# --- the properties --------------------------------------------------------------------------------


@settings(FUZZ, max_examples=1500)
@given(data=st.data())
def test_documented_operations_with_broken_bodies_never_fail(api: Api, data: st.DataObject) -> None:
    check(api, data.draw(documented_events(api.operations())))


@settings(FUZZ, max_examples=1500)
@given(event=raw_events())
def test_raw_requests_never_fail(api: Api, event: dict[str, Any]) -> None:
    check(api, event)


def test_the_generated_bodies_reach_the_model(api: Api) -> None:
    """The strategies are not all refusals: a good row scores (so the properties cover the 200 path too)."""
    body = json.dumps({"instances": [api.example]})
    assert check(api, proxy_event(HttpRequest("POST", "/predict", body=body))) == 200
    assert check(api, proxy_event(HttpRequest("POST", "/predict/async", body=body))) == 202
