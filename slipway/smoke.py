"""End-to-end check of a running endpoint: health, model, one prediction, one bad request."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from functions.adapters import factory
from stage.settings import ApiSettings

TIMEOUT_SECONDS = 30
# The bearer token `slipway smoke` sends under api.auth jwt (one from api.jwt_issuer for api.jwt_audience).
JWT_ENV = "SLIPWAY_JWT"

# As the stack's EndpointUrl output names the front door: https://{api id}.execute-api.{region}.{suffix}/{stage}/
# (REST API), {scheme}://{api id}.execute-api.{host}/ (HTTP API, its $default stage; an emulator names its own
# host and scheme there) or https://{url id}.lambda-url.{region}.on.aws/ (function URL).
_REST_API_URL = re.compile(r"^https://(?P<api>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[^/]+)/?$")
_HTTP_API_URL = re.compile(r"^https?://(?P<api>[a-z0-9]+)\.execute-api\.[^/]+/?$")
_FUNCTION_URL = re.compile(r"^https://(?P<url>[a-z0-9]+)\.lambda-url\.[^/]+/?$")


def emulator_url(endpoint_url: str, emulator: str) -> str:
    """The URL an AWS emulator at `emulator` serves the front door of `endpoint_url` on.

    The stack's output names the AWS host; an emulator answers the same API under
    `{emulator}/_aws/execute-api/{api id}/{stage}/` (an HTTP API's stage is `$default`) and a function URL under
    `{emulator}/_aws/lambda-url/{url id}/`.
    """
    base = emulator.rstrip("/")
    if match := _FUNCTION_URL.match(endpoint_url):
        return f"{base}/_aws/lambda-url/{match['url']}/"
    if match := _REST_API_URL.match(endpoint_url):
        return f"{base}/_aws/execute-api/{match['api']}/{match['stage']}/"
    if match := _HTTP_API_URL.match(endpoint_url):
        return f"{base}/_aws/execute-api/{match['api']}/$default/"
    raise ValueError(f"not an API Gateway endpoint URL or function URL: {endpoint_url!r}")


@dataclass(frozen=True)
class CallerAuth:
    """How a request proves its caller to the front door: an API key, SigV4 for a service, or a bearer token."""

    api_key: str | None = None
    sigv4_service: str | None = None
    bearer: str | None = None


# The service SigV4 names, by front door: API Gateway's for its APIs, Lambda's for a function URL.
SIGV4_SERVICE = {"rest": "execute-api", "http": "execute-api", "function_url": "lambda"}


def caller_auth(api: ApiSettings, api_key: str | None) -> CallerAuth:
    """The stage's way in: SigV4 under iam (with a metering key too when api.metering_keys is on), the
    bearer token of $SLIPWAY_JWT under jwt, the API key under api_key."""
    if api.auth == "iam":
        return CallerAuth(api_key=api_key, sigv4_service=SIGV4_SERVICE[api.type])
    if api.auth == "jwt":
        token = os.environ.get(JWT_ENV)
        if not token:
            raise ValueError(
                f"api.auth is jwt: set {JWT_ENV} to a token issued by {api.jwt_issuer} "
                f"for one of {list(api.jwt_audience)}"
            )
        return CallerAuth(bearer=token)
    return CallerAuth(api_key=api_key)


def stack_endpoint(stack_name: str) -> tuple[str, str | None]:
    """The stack's endpoint URL and API key value (None under IAM auth).

    With AWS_ENDPOINT_URL set (an emulator), the URL is where the emulator serves the API.
    """
    stacks = factory.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    url = outputs["EndpointUrl"]
    if os.environ.get("AWS_ENDPOINT_URL"):
        url = emulator_url(url, os.environ["AWS_ENDPOINT_URL"])
    key_id = outputs.get("ApiKeyId")
    key = None
    if key_id:
        key = factory.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]
    return url, key


def _call(method: str, url: str, body: Any, auth: CallerAuth) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if auth.api_key:
        headers["x-api-key"] = auth.api_key
    if auth.bearer:
        headers["Authorization"] = f"Bearer {auth.bearer}"
    if auth.sigv4_service:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        region = factory.client("sts").meta.region_name
        SigV4Auth(boto3.session.Session().get_credentials(), auth.sigv4_service, region).add_auth(request)
        headers = dict(request.headers)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())
    except (urllib.error.URLError, TimeoutError) as exc:
        return 0, {"message": f"no answer from {url}: {getattr(exc, 'reason', exc)}"}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null") or {}
    except ValueError:
        return {"message": body[:200].decode(errors="replace")}


def smoke_test(*, stage: str, url: str | None = None, api_key: str | None = None) -> int:
    """Exit code 0 when the endpoint answers as the contract says; prints each check."""
    auth = CallerAuth(api_key=api_key, bearer=os.environ.get(JWT_ENV) or None)
    if url is None:
        from slipway.target import resolve

        target = resolve(stage)
        url, stored_key = stack_endpoint(target.names.stack)
        try:
            auth = caller_auth(target.settings.api, api_key or stored_key)
        except ValueError as exc:
            print(f"FAIL {exc}")
            return 1
    base = url.rstrip("/")
    failures = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    if auth != CallerAuth():
        status, refused = _call("GET", f"{base}/health", None, CallerAuth())
        check("GET /health without credentials", status in (401, 403), f"{status} {refused}")
    status, health = _call("GET", f"{base}/health", None, auth)
    check("GET /health", status == 200 and health.get("status") == "ready", f"{status} {health}")
    status, model = _call("GET", f"{base}/model", None, auth)
    check("GET /model", status == 200, f"{status} version {model.get('version') if status == 200 else model}")
    if status != 200:
        return 1
    row = {f["name"]: f["impute"] for f in model["feature_spec"]["features"]}
    status, answer = _call("POST", f"{base}/predict", {"instances": [row]}, auth)
    ok = (
        status == 200
        and answer.get("model_version") == model["version"]
        and answer["predictions"][0]["fallback"] is None
    )
    check("POST /predict", ok, f"{status} {json.dumps(answer)[:200]}")
    status, error = _call("POST", f"{base}/predict", {"instances": [{"no_such_feature": 1}]}, auth)
    check("POST /predict (bad input)", status == 422, f"{status} {error.get('message', '')[:120]}")
    print("smoke test passed" if failures == 0 else f"smoke test failed: {failures} check(s)")
    return 0 if failures == 0 else 1
