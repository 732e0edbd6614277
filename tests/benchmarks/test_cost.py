"""The cost section's arithmetic on given figures, and the log lines it prices: no handler, no timing."""

from __future__ import annotations

import json

import pytest

from benchmarks import aws_prices
from benchmarks.cost import (
    Invocation,
    LoggedBytes,
    access_log_line,
    cost_per_million,
    log_byte_budget,
    platform_bytes,
)

LOGGED = LoggedBytes(function=300, capture=1000, response=200)


def test_a_million_predictions_through_an_http_api_cost_each_of_its_charges() -> None:
    invocation = Invocation(
        duration_ms=0.4, memory_mb=1024, architecture="arm64", logged=LOGGED, capture_rate=0.1, platform=0
    )
    cost = cost_per_million("http", invocation, access=100, capture_days=30)

    # 300 B of function lines, a tenth of 1,000 B of capture lines, no platform lines, 100 B of access log.
    assert cost.log_bytes == pytest.approx(500)
    gb = 1e6 / 2**30  # a million requests' bytes, in GB (2^30 bytes)
    assert cost.front_door == 1.00
    assert cost.function == pytest.approx(0.20 + 1e6 * 0.001 * 1 * 0.0000133334)  # 0.4 ms billed 1 ms at 1 GB
    assert cost.logs == pytest.approx(500 * gb * 0.50)
    # 100.1 B per request to Firehose (the line and its newline, a tenth of the time), kept one month in S3.
    assert cost.capture_storage == pytest.approx(100.1 * gb * (0.029 + 0.023))
    assert cost.total == pytest.approx(1.00 + 0.2133334 + 0.2328306 + 0.0048477, abs=1e-6)


def test_a_function_url_costs_no_front_door_and_x86_pays_its_own_duration_price() -> None:
    invocation = Invocation(
        duration_ms=1.2, memory_mb=512, architecture="x86_64", logged=LOGGED, capture_rate=0.0, platform=0
    )
    cost = cost_per_million("function_url", invocation, access=0, capture_days=90)
    assert cost.front_door == 0.0 and cost.capture_storage == 0.0 and cost.log_bytes == 300
    assert cost.function == pytest.approx(0.20 + 1e6 * 0.002 * 0.5 * 0.0000166667)  # 1.2 ms billed 2 ms


def test_the_log_byte_budget_spends_exactly_the_target() -> None:
    budget = log_byte_budget("http", 1.50, memory_mb=1024, architecture="arm64", capture_storage_usd=0.01)
    logged = LoggedBytes(function=budget, capture=0, response=0)
    invocation = Invocation(
        duration_ms=1.0, memory_mb=1024, architecture="arm64", logged=logged, capture_rate=0, platform=0
    )
    at_budget = cost_per_million("http", invocation, access=0, capture_days=0)
    assert at_budget.total + 0.01 == pytest.approx(1.50)
    assert 550 < budget < 600
    # A front door dearer than the target leaves no bytes at all.
    assert log_byte_budget("rest", 1.50, memory_mb=1024, architecture="arm64", capture_storage_usd=0) == 0


def test_platform_lines_are_lambdas_three_lines_unless_dropped() -> None:
    assert platform_bytes(0.4, 1024, dropped=True) == 0
    # START (~70 B), END (~50 B), REPORT with its X-Ray line (~230 B).
    assert 300 < platform_bytes(0.4, 1024, dropped=False) < 400


def test_access_log_lines_are_the_front_doors_formats_rendered() -> None:
    assert access_log_line("function_url", 200) == ""
    http = json.loads(access_log_line("http", 187.4))
    assert set(http) == {"requestId", "ip", "caller", "route", "status"} and http["status"] == "200"
    assert http["caller"].startswith("arn:aws:sts::")
    rest = json.loads(access_log_line("rest", 187))
    assert rest["resourcePath"] == "/predict" and rest["responseLength"] == "187"
    assert all(not value.startswith("$context") for value in rest.values())
    with pytest.raises(ValueError, match=r"unknown api\.type 'grpc'"):
        access_log_line("grpc", 1)


def test_every_price_has_a_front_door_of_each_type() -> None:
    assert set(aws_prices.FRONT_DOOR_USD_PER_MILLION) == {"rest", "http", "function_url"}
    assert set(aws_prices.LAMBDA_USD_PER_GB_SECOND) == {"arm64", "x86_64"}
