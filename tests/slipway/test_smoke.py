"""The smoke test finds an emulator's URL for a stack's API and reports an endpoint that does not answer."""

from __future__ import annotations

import pytest

from slipway.smoke import emulator_url, smoke_test


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
