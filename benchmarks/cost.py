"""Cost per million one-row predictions, end to end, for each front door (api.type): rest, http, function_url.

Each request pays its front door (benchmarks/aws_prices.py), Lambda (the request charge and the
measured warm p50 duration, rounded up to a whole millisecond, at the dev stage's memory and
architecture), CloudWatch Logs ingestion of every byte it logs, and the way of its captured rows
to S3 (Firehose ingestion, then S3 Standard until the capture lifecycle rule expires them).

The logged bytes are measured, not assumed: one-row requests run through the inference handler
with the dev stage's environment and every request captured, and what each writes to stdout and
stderr (EMF metric documents, log lines, capture lines) is counted per request, capture lines
apart, so that each sampling rate is priced at its share of them. On top come Lambda's own
START, END and REPORT lines (their real layout, unless the function's log configuration drops
them: infra/lambda_function.py) and the front door's access log line: the REST API's
ACCESS_LOG_FORMAT (infra/serving.py) and the HTTP API's (infra/front_doors.py http_access_log_format)
rendered with realistic values; a function URL writes none.

Figures are at the dev stage's settings with capture sampled as in prod (the targets), each
against today's dev figure measured in the same run: the REST API with dev's own sampling.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import boto3
import numpy as np
from moto import mock_aws

from benchmarks import aws_prices, lambda_pricing, targets
from benchmarks.table import Row
from benchmarks.warm_latency import OURS_MODULE, _latencies
from benchmarks.workload import STAGE, Workload, offline_environment, seed_registry
from functions.core.capture import CAPTURE_MARKER
from functions.inference.config import FrontDoorType
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, proxy_event
from stage.settings import load_settings

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_TYPES: tuple[FrontDoorType, ...] = get_args(FrontDoorType)
TARGET_CAPTURE_STAGE = "prod"  # the targets price capture at this stage's sampling rate
CALLS, WARMUP, LOGGED_CALLS = 2000, 200, 500  # timed one-row calls, untimed before them, calls whose bytes count

# Realistic values of the $context variables an access log format may name; "-" is API Gateway's empty value.
_CONTEXT = {
    "requestId": "c0a8e3f2-4b1d-4e2a-9f6b-2d7e8a1c3b5f",
    "extendedRequestId": "Qx3dUgRPIAMEbZQ=",
    "identity.sourceIp": "203.0.113.17",
    "identity.caller": "-",
    "identity.user": "-",
    "identity.userArn": "-",
    "identity.apiKeyId": "k3j9x2m7q1",
    "identity.userAgent": "python-requests/2.32.3",
    "requestTime": "07/Dec/2026:16:48:20 +0000",
    "requestTimeEpoch": "1796662100361",
    "httpMethod": "POST",
    "resourcePath": "/predict",
    "path": "/prod/predict",
    "routeKey": "POST /predict",
    "status": "200",
    "protocol": "HTTP/1.1",
    "integrationLatency": "12",
    "responseLatency": "14",
    "integrationStatus": "200",
    "integrationErrorMessage": "-",
    "error.message": "-",
    "stage": "prod",
    "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
}
# An HTTP API's request ids are 16 characters, not UUIDs; its callers are signed (an IAM principal).
_HTTP_CONTEXT = {
    "requestId": "Qx3dUgRPIAMEbZQ=",
    "identity.userArn": "arn:aws:sts::123456789012:assumed-role/client-app/session-7",
}
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z.]+)")

# Lambda's platform lines of one warm invocation in the text format, as CloudWatch Logs shows them
# (the REPORT event carries the X-Ray line under active tracing). The JSON format's records are longer.
_PLATFORM_LINES = (
    "START RequestId: {request_id} Version: {version}",
    "END RequestId: {request_id}",
    "REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed_ms:.0f} ms\t"
    "Memory Size: {memory_mb} MB\tMax Memory Used: 187 MB\t\n"
    "XRAY TraceId: 1-6756f2c4-3a8e1b2c4d5e6f708192a3b4\tSegmentId: 5f2a9c7e1b3d4a60\tSampled: true\t",
)


@dataclass(frozen=True)
class LoggedBytes:
    """What one one-row /predict request logs, on average, in bytes of log event messages."""

    function: float  # every line but the capture lines: EMF metric documents and log lines
    capture: float  # the capture lines of a captured request
    response: float  # the answer's body (an access log's responseLength)


@dataclass(frozen=True)
class Invocation:
    """One warm one-row /predict request to the inference function, whichever front door it came through."""

    duration_ms: float  # warm; Lambda bills it rounded up to a whole millisecond
    memory_mb: int
    architecture: str
    logged: LoggedBytes
    capture_rate: float  # the share of requests whose rows are captured
    platform: float  # bytes of Lambda's START, END and REPORT lines (0 when the log configuration drops them)


@dataclass(frozen=True)
class Cost:
    """A million one-row predictions through one front door, in USD, and the bytes each request logs."""

    api_type: str
    front_door: float
    function: float  # Lambda: requests and billed duration
    logs: float  # CloudWatch Logs ingestion
    capture_storage: float  # Firehose ingestion and S3 storage of the captured lines
    log_bytes: float  # per request: function lines, sampled capture lines, platform lines, access log line

    @property
    def total(self) -> float:
        return self.front_door + self.function + self.logs + self.capture_storage


def logged_bytes(handler: Handler, bodies: Sequence[str], calls: int) -> LoggedBytes:
    """Send `calls` one-row /predict requests to `handler` and count what each writes to stdout and stderr.

    Every request must be captured (a capture sampling rate of 1), so that the capture lines are measured.
    """
    function = capture = response = 0
    context = FakeLambdaContext()
    for index in range(calls):
        event = proxy_event(HttpRequest("POST", "/predict", body=bodies[index % len(bodies)]))
        with _output() as sink:
            answer = handler(event, context)
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the handler answered {answer['statusCode']}: {answer['body'][:500]}")
        response += len(answer["body"].encode())
        lines = sink.getvalue().splitlines()
        captured = [len(line.encode()) for line in lines if CAPTURE_MARKER in line]
        if not captured:
            raise RuntimeError("a request was not captured: measure with CAPTURE_SAMPLING_RATE=1")
        capture += sum(captured)
        function += sum(len(line.encode()) for line in lines if CAPTURE_MARKER not in line)
    return LoggedBytes(function=function / calls, capture=capture / calls, response=response / calls)


@contextlib.contextmanager
def _output() -> Iterator[io.StringIO]:
    """stdout and stderr into one buffer, with the logging handlers that write to them (bound at cold start)."""
    sink = io.StringIO()
    outputs = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.Logger.manager.loggerDict)]
    handlers = {
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and any(handler.stream is output for output in outputs)
    }
    saved = [(handler, handler.setStream(sink)) for handler in handlers]
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        for handler, stream in saved:
            handler.setStream(stream)


def platform_bytes(duration_ms: float, memory_mb: int, *, dropped: bool) -> int:
    """Bytes of Lambda's START, END and REPORT lines of one invocation; 0 when the log configuration drops them."""
    if dropped:
        return 0
    values = {
        "request_id": _CONTEXT["requestId"],
        "version": "7",
        "duration_ms": duration_ms,
        "billed_ms": lambda_pricing.billed_ms(duration_ms),
        "memory_mb": memory_mb,
    }
    return sum(len(line.format(**values).encode()) for line in _PLATFORM_LINES)


def platform_lines_dropped() -> bool:
    """Whether the functions' log configuration (infra/lambda_function.py) drops Lambda's INFO platform lines."""
    from infra.lambda_function import LOG_FORMAT, SYSTEM_LOG_LEVEL

    return LOG_FORMAT.value == "JSON" and SYSTEM_LOG_LEVEL.value == "WARN"


def access_log_line(api_type: str, response_bytes: float) -> str:
    """The access log line the front door writes for one /predict request ("" for a function URL)."""
    if api_type == "function_url":
        return ""
    if api_type == "rest":
        from infra.serving import ACCESS_LOG_FORMAT

        template, values = ACCESS_LOG_FORMAT, _CONTEXT
    elif api_type == "http":
        from infra.front_doors import http_access_log_format

        # The line under IAM auth: a caller's ARN is longer than a JWT's subject.
        template, values = http_access_log_format("iam"), {**_CONTEXT, **_HTTP_CONTEXT}
    else:
        raise ValueError(f"unknown api.type {api_type!r}: one of {', '.join(API_TYPES)}")
    values = {**values, "responseLength": str(round(response_bytes))}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"the access log names $context.{name}, which has no sample value in {__name__}")
        return values[name]

    return _CONTEXT_VARIABLE.sub(value, template)


def cost_per_million(api_type: str, invocation: Invocation, *, access: float, capture_days: int) -> Cost:
    """A million `invocation`s through `api_type`'s front door, each logging `access` bytes there: charges in USD."""
    logged = invocation.logged
    capture_bytes = invocation.capture_rate * logged.capture
    log_bytes = logged.function + capture_bytes + invocation.platform + access
    gb_per_million = 1e6 / aws_prices.BYTES_PER_GB
    # Firehose appends a newline to each line; S3 keeps it `capture_days` (a month is 30 days).
    capture_gb = (capture_bytes + invocation.capture_rate) * gb_per_million
    storage = capture_gb * (
        aws_prices.FIREHOSE_USD_PER_GB_INGESTED + aws_prices.S3_STANDARD_USD_PER_GB_MONTH * capture_days / 30
    )
    return Cost(
        api_type=api_type,
        front_door=aws_prices.FRONT_DOOR_USD_PER_MILLION[api_type],
        function=lambda_pricing.usd_per_million_invocations(
            invocation.duration_ms, invocation.memory_mb, invocation.architecture
        ),
        logs=log_bytes * gb_per_million * aws_prices.CLOUDWATCH_LOGS_USD_PER_GB_INGESTED,
        capture_storage=storage,
        log_bytes=log_bytes,
    )


def log_byte_budget(
    api_type: str, target_usd: float, *, memory_mb: int, architecture: str, capture_storage_usd: float
) -> float:
    """The most bytes a request may log for a million of them to cost `target_usd`, Lambda billed its 1 ms minimum."""
    fixed = (
        aws_prices.FRONT_DOOR_USD_PER_MILLION[api_type]
        + lambda_pricing.usd_per_million_invocations(lambda_pricing.BILLING_INCREMENT_MS, memory_mb, architecture)
        + capture_storage_usd
    )
    usd_per_byte = 1e6 / aws_prices.BYTES_PER_GB * aws_prices.CLOUDWATCH_LOGS_USD_PER_GB_INGESTED
    return max(0.0, (target_usd - fixed) / usd_per_byte)


def costs(
    duration_ms: float, logged: LoggedBytes, *, capture_rate: float, memory_mb: int, architecture: str
) -> dict[str, Cost]:
    """Each front door's cost per million at the given capture rate, with the functions' log configuration."""
    from infra.storage import CAPTURE_EXPIRY_DAYS

    invocation = Invocation(
        duration_ms=duration_ms,
        memory_mb=memory_mb,
        architecture=architecture,
        logged=logged,
        capture_rate=capture_rate,
        platform=platform_bytes(duration_ms, memory_mb, dropped=platform_lines_dropped()),
    )
    return {
        api_type: cost_per_million(
            api_type,
            invocation,
            access=len(access_log_line(api_type, logged.response).encode()),
            capture_days=CAPTURE_EXPIRY_DAYS,
        )
        for api_type in API_TYPES
    }


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    calls, warmup, logged_calls = (max(1, n // 10) if quick else n for n in (CALLS, WARMUP, LOGGED_CALLS))
    with offline_environment({**workload.handler_env, "CAPTURE_SAMPLING_RATE": "1"}), mock_aws():
        seed_registry(boto3.client("s3"), boto3.client("ssm"), workload)
        handler = cold_start(OURS_MODULE).lambda_handler  # its logger writes to this process's stdout
        p50 = float(np.percentile(_latencies(handler, workload.one_row_bodies, calls, warmup), 50))
        logged = logged_bytes(handler, workload.one_row_bodies, logged_calls)

    dev = load_settings(STAGE)
    target_rate = load_settings(TARGET_CAPTURE_STAGE).capture.sampling_rate
    memory_mb, architecture = dev.inference.memory_mb, dev.inference.architecture
    at_target = costs(p50, logged, capture_rate=target_rate, memory_mb=memory_mb, architecture=architecture)
    today = costs(p50, logged, capture_rate=dev.capture.sampling_rate, memory_mb=memory_mb, architecture=architecture)
    print(breakdown(at_target, today["rest"], p50, logged, target_rate), flush=True)
    return rows(at_target, today["rest"], p50, logged, capture_rate=target_rate, memory_mb=memory_mb,
                architecture=architecture, dev_rate=dev.capture.sampling_rate)  # fmt: skip


def rows(
    at_target: dict[str, Cost],
    today: Cost,
    duration_ms: float,
    logged: LoggedBytes,
    *,
    capture_rate: float,
    memory_mb: int,
    architecture: str,
    dev_rate: float,
) -> list[Row]:
    """A total and its CloudWatch Logs share per front door, each against today's dev figure (REST, dev's sampling)."""
    note = (
        f"cost: a million warm one-row /predict requests at the dev stage's settings ({architecture} {memory_mb} MB) "
        f"with capture at {TARGET_CAPTURE_STAGE}'s {capture_rate:.0%}, against today's dev figure in the baseline "
        f"column (REST API, capture at dev's {dev_rate:.0%}); {aws_prices.REGION} list prices of "
        f"{aws_prices.PRICES_AS_OF} (benchmarks/aws_prices.py). Lambda: requests plus the p50 duration "
        f"({duration_ms:.2f} ms, measured here, not on Graviton) rounded up to whole ms. CloudWatch Logs: "
        f"${aws_prices.CLOUDWATCH_LOGS_USD_PER_GB_INGESTED:.2f}/GB of the bytes each request logs, measured through "
        f"the handler with dev's environment: {logged.function:.0f} B of EMF metrics and log lines, "
        f"{logged.capture:.0f} B of capture lines per captured request, Lambda's START/END/REPORT lines unless the "
        f"log configuration drops them, and the access log line (REST: ACCESS_LOG_FORMAT; HTTP API: "
        f"infra/front_doors.py http_access_log_format; function URL: none). Capture to S3: Firehose "
        f"${aws_prices.FIREHOSE_USD_PER_GB_INGESTED}/GB and S3 Standard until the capture lifecycle expires it. "
        "Not counted: X-Ray traces, CloudWatch Logs storage, custom metrics (per metric-month, not per request), "
        "API Gateway data transfer"
    )
    result: list[Row] = []
    for api_type, cost in at_target.items():
        target = targets.COST_PER_MILLION_USD.get(api_type)
        result.append(
            Row(
                f"cost per million one-row predictions, end to end, api.type {api_type}",
                "USD",
                cost.total,
                today.total,
                target="—" if target is None else f"≤ ${target:.2f}",
                met=None if target is None else cost.total <= target,
                note=None if result else note,
            )
        )
        result.append(Row(f"  of which CloudWatch Logs ({cost.log_bytes:.0f} B a request)", "USD", cost.logs,
                          today.logs))  # fmt: skip
    return result


def breakdown(at_target: dict[str, Cost], today: Cost, duration_ms: float, logged: LoggedBytes, rate: float) -> str:
    """Each front door's charges, as printed while the section runs."""
    lines = [
        f"cost: p50 {duration_ms:.3f} ms (billed {lambda_pricing.billed_ms(duration_ms):.0f} ms); logged per request: "
        f"{logged.function:.0f} B function lines, {logged.capture:.0f} B capture lines when captured (x {rate:g})",
        f"  {'api.type':<13} {'front door':>10} {'Lambda':>8} {'logs':>8} {'capture':>8} {'total':>8} "
        f"{'B logged':>9} {'of today':>9}",
    ]
    for cost in [*at_target.values(), today]:
        label = cost.api_type if cost is not today else "rest (today)"
        lines.append(
            f"  {label:<13} {cost.front_door:>10.3f} {cost.function:>8.3f} {cost.logs:>8.3f} "
            f"{cost.capture_storage:>8.4f} {cost.total:>8.3f} {cost.log_bytes:>9.0f} {cost.total / today.total:>9.0%}"
        )
    return "\n".join(lines)
