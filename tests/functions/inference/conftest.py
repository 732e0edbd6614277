"""Fixtures of the inference function's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Invoke


@pytest.fixture
def refreshing_invoke_factory(
    invoke_factory: Callable[[], Invoke], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Invoke]:
    """`invoke_factory` for containers that re-read the live pointer at every request, as a container on AWS
    does once its refresh interval has passed: the tests need not wait for it."""
    monkeypatch.setenv("POINTER_REFRESH_SECONDS", "0.000001")
    return invoke_factory
