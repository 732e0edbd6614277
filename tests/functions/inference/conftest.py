"""Fixtures of the inference function's tests."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from slipway.local.async_jobs import create_queues
from stage.names import ResourceNames
from stage.settings import load_settings
from tests.conftest import Invoke


@pytest.fixture
def refreshing_invoke_factory(
    invoke_factory: Callable[[], Invoke], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Invoke]:
    """`invoke_factory` for containers that re-read the live pointer at every request, as a container on AWS
    does once its refresh interval has passed: the tests need not wait for it."""
    monkeypatch.setenv("POINTER_REFRESH_SECONDS", "0.000001")
    return invoke_factory


@pytest.fixture
def requests_queue(aws: None, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> str:
    """The async jobs' queues made on moto as the stage makes them, the requests queue named in the function's
    environment (handler_env leaves it out): its URL."""
    requests, _ = create_queues(boto3.client("sqs"), load_settings("dev"), names)
    monkeypatch.setenv("REQUESTS_QUEUE_URL", requests)
    return requests
