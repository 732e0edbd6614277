"""A request's body made into what the routes read, before routing: JSON text, or a clear 4xx.

API Gateway passes bodies as they came: base64 when it holds bytes, any media type
spelling, any charset, any Content-Encoding. Everything that can fail on the way to
JSON text fails here, as an `InvalidRequest` naming the field and the rule, so that
no such failure reaches the resolver (where it would raise, and API Gateway answer 502):

- a base64 body is decoded (not valid base64: 400);
- a Content-Encoding other than identity is refused (415: send the body uncompressed);
- a body's media type must be application/json, compared case-insensitively (else 415), or
  text/csv with a header row on the routes that take rows (`csv_paths`): the rows become
  `{"instances": [...]}`, read as batch scoring reads its files (empty is missing, numbers
  are numbers, anything else text), so they meet the same validation and limits;
- its `charset` parameter is honoured (unknown, or not a text encoding: 415), and text that is not in it is 400.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Callable
from typing import Any

import orjson
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from functions.core.batch import parse_csv
from functions.core.errors import FieldError, InvalidRequest
from functions.core.features import FeatureSpec

JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv"
_SHOWN_CSV_ERRORS = 3
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def normalised(
    request: BaseProxyEvent,
    *,
    csv_paths: frozenset[str] = frozenset(),
    csv_spec: Callable[[], FeatureSpec | None] = lambda: None,
) -> dict[str, Any]:
    """The event of `request` with its body as JSON text (Content-Type application/json); InvalidRequest when it
    cannot be. `request` is the front door's event data class (REST proxy event or payload format 2.0).

    A CSV body's cells are typed by `csv_spec()`'s features (the live model's), see `parse_csv`.
    """
    event = request.raw_event
    raw = request.body
    if raw is None or raw == "" or request.http_method.upper() not in _BODY_METHODS:
        return event
    headers = request.headers  # compared case-insensitively, as HTTP does
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _refused(415, ("header", "Content-Encoding"), "unsupported_content_encoding",
                       f"Content-Encoding {encoding!r} is not supported: send the body uncompressed")  # fmt: skip
    media_type, charset = _content_type(headers.get("Content-Type"))
    csv = media_type == CSV_MEDIA_TYPE and request.path in csv_paths
    if media_type != JSON_MEDIA_TYPE and not csv:
        accepted = f"{JSON_MEDIA_TYPE} or {CSV_MEDIA_TYPE}" if request.path in csv_paths else JSON_MEDIA_TYPE
        raise _refused(415, ("header", "Content-Type"), "unsupported_content_type",
                       f"the body must be {accepted}, got {media_type or 'no media type'!r}")  # fmt: skip
    body = _bytes(raw, base64_encoded=bool(request.is_base64_encoded))
    try:
        text = body.decode(charset)
    except UnicodeError as exc:  # some codecs (punycode) raise UnicodeError without a position
        where = f" (byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise _refused(400, ("body",), "invalid_encoding",
                       f"the body is not valid {charset} text{where}") from None  # fmt: skip
    if csv:
        text = _csv_as_json(text, csv_spec())
    headers = {**_without_content_type(event.get("headers")), "Content-Type": JSON_MEDIA_TYPE}
    admitted = {**event, "body": text, "isBase64Encoded": False, "headers": headers}
    if "multiValueHeaders" in event:  # REST proxy events only
        multi = _without_content_type(event["multiValueHeaders"])
        admitted["multiValueHeaders"] = {**multi, "Content-Type": [JSON_MEDIA_TYPE]}
    return admitted


def _without_content_type(headers: dict[str, Any] | None) -> dict[str, Any]:
    return {name: value for name, value in (headers or {}).items() if name.lower() != "content-type"}


def _csv_as_json(text: str, spec: FeatureSpec | None) -> str:
    """A CSV body (header row first) as the JSON body `{"instances": [...]}`; 400 naming the lines that are not rows."""
    parsed = parse_csv(text.encode("utf-8", errors="surrogatepass"), spec)
    if parsed.errors:
        shown = "; ".join(f"line {error.line}: {error.message}" for error in parsed.errors[:_SHOWN_CSV_ERRORS])
        more = f" (and {len(parsed.errors) - _SHOWN_CSV_ERRORS} more)" if len(parsed.errors) > _SHOWN_CSV_ERRORS else ""
        raise _refused(400, ("body",), "invalid_csv", f"the CSV body has lines that are not rows: {shown}{more}")
    return orjson.dumps({"instances": parsed.rows}).decode()


# The charsets a body may declare: real text encodings, as IANA registers them. Python's other codecs are refused:
# some are not text (base64, zlib), and some let the same text take many byte forms (utf-7, unicode_escape,
# punycode), so a body could read one way to a firewall and another way here.
TEXT_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "us-ascii",
        *(f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
        *(f"windows-{n}" for n in range(1250, 1259)),
        "koi8-r", "koi8-u", "shift_jis", "euc-jp", "iso-2022-jp", "euc-kr", "gbk", "gb18030", "big5",
    )
)  # fmt: skip


def _content_type(value: str | None) -> tuple[str, str]:
    """(media type in lower case, charset codec name) of a Content-Type header; no header means JSON."""
    if value is None or not value.strip():
        return JSON_MEDIA_TYPE, "utf-8"
    media_type, *parameters = (part.strip() for part in value.split(";"))
    charset = "utf-8"
    for parameter in parameters:
        name, _, given = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = given.strip().strip('"').lower() or "utf-8"
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        codec = ""
    if codec not in TEXT_CHARSETS:
        raise _refused(415, ("header", "Content-Type"), "unsupported_charset",
                       f"charset {charset!r} is not a text encoding this API reads: send UTF-8") from None  # fmt: skip
    return media_type.lower(), codec


def _bytes(raw: Any, *, base64_encoded: bool) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text = str(raw)
    if not base64_encoded:
        return text.encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _refused(400, ("body",), "invalid_base64", "the body is marked base64 but is not valid base64") from None


def _refused(status: int, loc: tuple[str, ...], rule: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, [FieldError(loc, rule, message)], status=status)
