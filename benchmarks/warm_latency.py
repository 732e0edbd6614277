"""Warm latency: API Gateway event in, proxy response out, through each handler's `lambda_handler`.

Slipway's handler runs against moto in this process (bucket and live pointer
seeded as the CDK app creates them, bundle registered and promoted), so the
model is loaded through the real adapters. Events are built before timing;
stdout (EMF metrics, one log line at model load) goes to os.devnull during
the loops, so printing costs a write to a file but nothing reaches the
terminal. Logging stays at INFO as deployed; the handler logs only at load.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
from moto import mock_aws

from benchmarks import targets
from benchmarks.table import Row
from benchmarks.workload import FAKE_CREDENTIALS, Workload, seed_registry
from slipway.local.lambda_runtime import FakeLambdaContext, cold_start, proxy_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
OURS_MODULE = "functions.inference.handler"
NAIVE_MODULE = "benchmarks.naive_baseline"


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    scale = 10 if quick else 1
    one_row_iterations, one_row_warmup = 2000 // scale, 200 // scale
    batch_iterations, batch_warmup = 200 // scale, 20 // scale
    with _environment(workload), mock_aws():
        seed_registry(boto3.client("s3"), boto3.client("ssm"), workload)
        ours = cold_start(OURS_MODULE).lambda_handler
        naive = cold_start(NAIVE_MODULE).lambda_handler
        _check_answers(ours, naive, workload)
        one = {
            name: _latencies(handler, workload.one_row_bodies, one_row_iterations, one_row_warmup)
            for name, handler in (("ours", ours), ("naive", naive))
        }
        batch = {
            name: _latencies(handler, workload.batch_bodies, batch_iterations, batch_warmup)
            for name, handler in (("ours", ours), ("naive", naive))
        }

    def p(samples: np.ndarray, q: float) -> float:
        return float(np.percentile(samples, q))

    ours_p50, naive_p50 = p(one["ours"], 50), p(one["naive"], 50)
    ours_p99, naive_p99 = p(one["ours"], 99), p(one["naive"], 99)
    batch_p50, naive_batch_p50 = p(batch["ours"], 50), p(batch["naive"], 50)
    batch_p99, naive_batch_p99 = p(batch["ours"], 99), p(batch["naive"], 99)
    method = (
        f"warm: {one_row_iterations} one-row and {batch_iterations} 1,000-row requests per handler after "
        f"{one_row_warmup}/{batch_warmup} warm-up calls; time.perf_counter_ns around lambda_handler(event, context) "
        "with events prebuilt by slipway.local.lambda_runtime.proxy_event; stdout redirected to os.devnull; "
        "POWERTOOLS_TRACE_DISABLED=1, POWERTOOLS_LOG_LEVEL=INFO (as deployed; logs only at model load)"
    )
    return [
        Row(
            "warm, 1 row, p50",
            "ms",
            ours_p50,
            naive_p50,
            target=f"≤ {targets.WARM_ONE_ROW_P50_MS} ms, ≥ {targets.WARM_SPEEDUP:.0f}x",
            met=ours_p50 <= targets.WARM_ONE_ROW_P50_MS and naive_p50 / ours_p50 >= targets.WARM_SPEEDUP,
            note=method,
        ),
        Row(
            "warm, 1 row, p99",
            "ms",
            ours_p99,
            naive_p99,
            target=f"≤ {targets.WARM_ONE_ROW_P99_MS:g} ms",
            met=ours_p99 <= targets.WARM_ONE_ROW_P99_MS,
        ),
        Row(
            "warm, 1,000 rows, p50",
            "ms",
            batch_p50,
            naive_batch_p50,
            target=f"≤ {targets.THOUSAND_ROWS_MS:g} ms",
            met=batch_p50 <= targets.THOUSAND_ROWS_MS,
        ),
        Row(
            "warm, 1,000 rows, p99",
            "ms",
            batch_p99,
            naive_batch_p99,
            target=f"≤ {targets.THOUSAND_ROWS_MS:g} ms",
            met=batch_p99 <= targets.THOUSAND_ROWS_MS,
        ),
    ]


@contextlib.contextmanager
def _environment(workload: Workload) -> Iterator[None]:
    """The deployed function's environment plus fake credentials; restored afterwards."""
    from functions.adapters import factory

    overrides = {**workload.handler_env, **FAKE_CREDENTIALS, "NAIVE_MODEL_PATH": str(workload.naive_model_path)}
    saved = {key: os.environ.get(key) for key in (*overrides, "AWS_ENDPOINT_URL", "AWS_PROFILE")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(overrides)
    factory.client.cache_clear()
    try:
        yield
    finally:
        factory.client.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _events(bodies: list[str], count: int) -> list[dict[str, Any]]:
    return [proxy_event("POST", "/predict", body=bodies[i % len(bodies)]) for i in range(count)]


def _latencies(handler: Handler, bodies: list[str], iterations: int, warmup: int) -> np.ndarray:
    """Milliseconds per call, after `warmup` untimed calls."""
    context = FakeLambdaContext()
    warm_events = _events(bodies, warmup)
    events = _events(bodies, iterations)
    samples = np.empty(iterations, dtype=np.int64)
    clock = time.perf_counter_ns
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for event in warm_events:
            handler(event, context)
        for index, event in enumerate(events):
            started = clock()
            handler(event, context)
            samples[index] = clock() - started
    return samples / 1e6


def _check_answers(ours: Handler, naive: Handler, workload: Workload) -> None:
    """Both handlers answer 200 with one prediction per row, and mostly the same labels."""
    context = FakeLambdaContext()
    body = workload.batch_bodies[0]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        answers = [handler(proxy_event("POST", "/predict", body=body), context) for handler in (ours, naive)]
    labels = []
    for name, answer in zip(("Slipway", "naive baseline"), answers, strict=True):
        if answer["statusCode"] != 200:
            raise RuntimeError(f"{name} handler answered {answer['statusCode']}: {answer['body'][:500]}")
        predictions = json.loads(answer["body"])["predictions"]
        labels.append([p["label"] for p in predictions])
    agreement = sum(a == b for a, b in zip(*labels, strict=False)) / len(labels[0])
    if len(labels[0]) != len(labels[1]) or agreement < 0.99:
        raise RuntimeError(f"the two handlers disagree: {agreement:.1%} of labels equal")
