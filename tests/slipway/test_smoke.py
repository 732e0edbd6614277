"""The smoke test finds an emulator's URL for a stack's API and reports an endpoint that does not answer."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from slipway.smoke import JWT_ENV, CallerAuth, _call, caller_auth, emulator_url, smoke_test
from stage.settings import ApiSettings


def test_emulator_url_serves_the_stack_api_under_execute_api() -> None:
    url = emulator_url("https://0fd54e83.execute-api.us-east-1.amazonaws.com/dev/", "http://127.0.0.1:4566/")
    assert url == "http://127.0.0.1:4566/_aws/execute-api/0fd54e83/dev/"
    assert emulator_url("https://abc.execute-api.eu-west-1.amazonaws.com.cn/prod", "http://h:1") == (
        "http://h:1/_aws/execute-api/abc/prod/"
    )


@pytest.mark.parametrize("url", ["http://0fd54e83.execute-api.x/dev/", "https://example.com/dev/", ""])
def test_emulator_url_refuses_what_is_not_an_api_gateway_url(url: str) -> None:
    with pytest.raises(ValueError, match="not an API Gateway endpoint URL"):
        emulator_url(url, "http://127.0.0.1:4566")


def test_an_endpoint_that_does_not_answer_fails_each_check_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert smoke_test(stage="dev", url="http://127.0.0.1:9/", api_key="k") == 1
    out = capsys.readouterr().out
    assert "FAIL GET /health" in out and "no answer from" in out


def test_emulator_url_of_an_http_api_and_of_a_function_url() -> None:
    # An HTTP API's $default stage has no segment in its URL; the emulator names it.
    url = emulator_url("https://abc123.execute-api.us-east-1.amazonaws.com/", "http://127.0.0.1:4566")
    assert url == "http://127.0.0.1:4566/_aws/execute-api/abc123/$default/"
    # MiniStack names its own host (and http, without TLS) in an HTTP API's endpoint.
    url = emulator_url("http://abc123.execute-api.localhost:4566/", "http://127.0.0.1:4566")
    assert url == "http://127.0.0.1:4566/_aws/execute-api/abc123/$default/"
    url = emulator_url("https://x7mzq2.lambda-url.us-east-1.on.aws/", "http://127.0.0.1:4566/")
    assert url == "http://127.0.0.1:4566/_aws/lambda-url/x7mzq2/"


@pytest.mark.parametrize(
    ("api", "service"),
    [
        (ApiSettings(auth="iam"), "execute-api"),
        (ApiSettings(type="http", auth="iam"), "execute-api"),
        (ApiSettings(type="function_url", auth="iam"), "lambda"),
    ],
)
def test_sigv4_names_the_front_doors_service(api: ApiSettings, service: str) -> None:
    assert caller_auth(api, None) == CallerAuth(sigv4_service=service)


def test_jwt_sends_the_token_of_its_variable_and_says_which_when_it_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = ApiSettings(type="http", auth="jwt", jwt_issuer="https://issuer.example.com/", jwt_audience=("slipway",))
    monkeypatch.delenv(JWT_ENV, raising=False)
    with pytest.raises(ValueError, match=f"set {JWT_ENV} to a token issued by https://issuer.example.com/"):
        caller_auth(api, None)
    monkeypatch.setenv(JWT_ENV, "eyJ.token")
    assert caller_auth(api, "ignored") == CallerAuth(bearer="eyJ.token")
    assert caller_auth(ApiSettings(), "key") == CallerAuth(api_key="key")


def test_signing_for_a_function_url_names_lambda_in_the_credential_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def answer(request: urllib.request.Request, timeout: float) -> None:
        seen.update(request.headers)
        raise urllib.error.URLError("stop")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr(urllib.request, "urlopen", answer)
    status, _ = _call(
        "GET", "https://x7mzq2.lambda-url.eu-west-1.on.aws/health", None, CallerAuth(sigv4_service="lambda")
    )
    assert status == 0
    assert "/eu-west-1/lambda/aws4_request" in seen["Authorization"]
