"""Lambda's billing arithmetic on given durations: the 1 ms rounding, GB-seconds, the request charge."""

from __future__ import annotations

import pytest

from benchmarks.lambda_pricing import (
    USD_PER_GB_SECOND_ARM64,
    USD_PER_MILLION_REQUESTS,
    billed_ms,
    duration_usd,
    usd_per_million_invocations,
)


def test_every_invocation_is_billed_whole_milliseconds() -> None:
    assert billed_ms(0.21) == 1.0
    assert billed_ms(1.0) == 1.0
    assert billed_ms(1.01) == 2.0
    assert billed_ms(23.4) == 24.0


def test_duration_is_charged_per_gb_second() -> None:
    assert duration_usd(1.0, 1024) == pytest.approx(USD_PER_GB_SECOND_ARM64)
    assert duration_usd(2.0, 512) == pytest.approx(USD_PER_GB_SECOND_ARM64)


def test_a_sub_millisecond_handler_costs_as_much_as_a_one_millisecond_one() -> None:
    one_ms = 1e6 * 0.001 * USD_PER_GB_SECOND_ARM64 + USD_PER_MILLION_REQUESTS
    assert usd_per_million_invocations(0.3, 1024) == pytest.approx(one_ms)
    assert usd_per_million_invocations(0.9, 1024) == pytest.approx(one_ms)
    assert usd_per_million_invocations(0.3, 1024) == pytest.approx(0.2133334)


def test_a_slower_handler_pays_each_started_millisecond() -> None:
    # 20.2 ms is billed 21 ms; at 2,048 MB that is 2 GB x 0.021 s per invocation.
    expected = 1e6 * 2 * 0.021 * USD_PER_GB_SECOND_ARM64 + USD_PER_MILLION_REQUESTS
    assert usd_per_million_invocations(20.2, 2048) == pytest.approx(expected)
    assert usd_per_million_invocations(20.2, 2048) == pytest.approx(0.76000280)
