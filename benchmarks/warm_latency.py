"""Warm latency and its Lambda cost: API Gateway event in, proxy response out, through each `lambda_handler`.

Measured for the example model and then for each model of benchmarks/deployed_models.py,
made live in turn (registered, promoted, both handlers imported afresh), each against its
own naive pipeline. The cost rows price the one-row durations with benchmarks/lambda_pricing.py.

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
import platform
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any

import boto3
import numpy as np
from moto import mock_aws

from benchmarks import lambda_pricing, targets
from benchmarks.table import Row
from benchmarks.workload import STAGE, ServedModel, Workload, offline_environment, seed_registry
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.registry import Registry
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, proxy_event
from stage.settings import load_settings

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
OURS_MODULE = "functions.inference.handler"
NAIVE_MODULE = "benchmarks.naive_baseline"


@dataclass(frozen=True)
class Budget:
    """Timed calls and untimed warm-up calls per handler, for one-row and 1,000-row requests."""

    one_row: int
    one_row_warmup: int
    batch: int
    batch_warmup: int

    def scaled(self, quick: bool) -> Budget:
        """A tenth of the calls under --quick (at least one of each)."""
        if not quick:
            return self
        return Budget(*(max(1, calls // 10) for calls in astuple(self)))


EXAMPLE_BUDGET = Budget(one_row=2000, one_row_warmup=200, batch=200, batch_warmup=20)
# Fewer for the tree ensembles: the naive forest takes tens of milliseconds per one-row call.
EXTRA_BUDGET = Budget(one_row=1000, one_row_warmup=100, batch=50, batch_warmup=5)


@dataclass(frozen=True)
class Measured:
    """One model's latencies in milliseconds, per handler ("ours", "naive")."""

    model: ServedModel
    one_row: dict[str, np.ndarray]
    batch: dict[str, np.ndarray]

    def p(self, kind: str, handler: str, q: float) -> float:
        """A percentile of `handler`'s latencies; handler "scoring" is Slipway's service.predict alone."""
        samples = self.one_row if kind == "one_row" else self.batch
        return float(np.percentile(samples[handler], q))

    def overhead(self, kind: str) -> float:
        """What Slipway's handler adds to its own scoring, p50 against p50 (ms)."""
        return self.p(kind, "ours", 50) - self.p(kind, "scoring", 50)


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    example_budget, extra_budget = EXAMPLE_BUDGET.scaled(quick), EXTRA_BUDGET.scaled(quick)
    with _environment(workload), mock_aws():
        s3, ssm = boto3.client("s3"), boto3.client("ssm")
        seed_registry(s3, ssm, workload)
        example, *extras = workload.models
        measured = [_measure(example, workload, example_budget)]
        registry = Registry(
            S3ModelStore(s3, workload.names.artifacts_bucket),
            SsmPointerStore(ssm, workload.names.live_pointer_parameter),
        )
        for model in extras:  # each made live in turn; a fresh import of each handler loads it
            registry.register(model.bundle.manifest, model.bundle.onnx_bytes)
            registry.promote(model.bundle.version, "benchmark")
            measured.append(_measure(model, workload, extra_budget))

    memory_mb = load_settings(STAGE).inference.memory_mb
    method = (
        f"warm: {example_budget.one_row} one-row and {example_budget.batch} 1,000-row requests per handler after "
        f"{example_budget.one_row_warmup}/{example_budget.batch_warmup} warm-up calls for the example model, "
        f"{extra_budget.one_row} and {extra_budget.batch} after {extra_budget.one_row_warmup}/"
        f"{extra_budget.batch_warmup} for each other model (trained by the same train_bundle on the same split; "
        "the baseline is the same pipeline pickled); time.perf_counter_ns around lambda_handler(event, context) "
        "with events prebuilt by slipway.local.lambda_runtime.proxy_event; stdout redirected to os.devnull; "
        "POWERTOOLS_TRACE_DISABLED=1, POWERTOOLS_LOG_LEVEL=INFO (as deployed; logs only at model load)"
    )
    rows = _example_rows(measured[0], method)
    for result in measured[1:]:
        rows.extend(model_rows(result))
    rows.extend(_cost_rows(measured, memory_mb))
    return rows


def _measure(model: ServedModel, workload: Workload, budget: Budget) -> Measured:
    """A fresh import of both handlers serving `model`, checked, then timed one after the other."""
    os.environ["NAIVE_MODEL_PATH"] = str(model.naive_model_path)  # restored by _environment
    module = cold_start(OURS_MODULE)
    ours = module.lambda_handler
    naive = cold_start(NAIVE_MODULE).lambda_handler
    _check_answers(ours, naive, workload, model)
    scoring = _scoring(module, [*workload.one_row_bodies, *workload.batch_bodies])
    handlers = (("ours", ours), ("naive", naive), ("scoring", scoring))
    one_row = {
        name: _latencies(handler, workload.one_row_bodies, budget.one_row, budget.one_row_warmup)
        for name, handler in handlers
    }
    batch = {
        name: _latencies(handler, workload.batch_bodies, budget.batch, budget.batch_warmup)
        for name, handler in handlers
    }
    return Measured(model, one_row, batch)


def _scoring(module: Any, bodies: list[str]) -> Handler:
    """The scoring Slipway's handler wraps, called alone on an event's rows (parsed here, untimed):
    service.predict, which validates and encodes the rows, runs the graph once and shapes the answers."""
    from functions.inference import service
    from functions.inference.schemas import parse_json

    serving = module.live_model.current()
    rows = {body: module.deps.request_model.model_validate(parse_json(body)).rows for body in bodies}

    def score(event: dict[str, Any], context: Any) -> dict[str, Any]:
        service.predict(serving, rows[event["body"]], key=None)
        return {"statusCode": 200}

    return score


def _example_rows(measured: Measured, method: str) -> list[Row]:
    """The example model's rows, under the names and targets of DESIGN.md."""
    ours_p50, naive_p50 = measured.p("one_row", "ours", 50), measured.p("one_row", "naive", 50)
    ours_p99, naive_p99 = measured.p("one_row", "ours", 99), measured.p("one_row", "naive", 99)
    batch_p50, naive_batch_p50 = measured.p("batch", "ours", 50), measured.p("batch", "naive", 50)
    batch_p99, naive_batch_p99 = measured.p("batch", "ours", 99), measured.p("batch", "naive", 99)
    overhead = measured.overhead("one_row")
    return [
        Row(
            "warm, 1 row, p50",
            "ms",
            ours_p50,
            naive_p50,
            target=f"≤ {targets.WARM_ONE_ROW_P50_MS:g} ms",
            met=ours_p50 <= targets.WARM_ONE_ROW_P50_MS,
            note=method,
        ),
        Row(
            "  of which scoring (service.predict alone), p50",
            "ms",
            measured.p("one_row", "scoring", 50),
            note="validate and encode the row, one ONNX Runtime call, shape the answer: called on the parsed rows",
        ),
        Row(
            "  of which the handler around it (Powertools, routing, body, metrics, capture), p50 - p50",
            "ms",
            overhead,
            target=f"≤ {targets.HANDLER_OVERHEAD_P50_MS:g} ms",
            met=overhead <= targets.HANDLER_OVERHEAD_P50_MS,
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
            "warm, 1,000 rows, p50, every request captured",
            "ms",
            batch_p50,
            naive_batch_p50,
            target=f"≤ {targets.THOUSAND_ROWS_MS:g} ms",
            met=batch_p50 <= targets.THOUSAND_ROWS_MS,
        ),
        Row("  of which scoring (service.predict alone), p50", "ms", measured.p("batch", "scoring", 50)),
        Row("warm, 1,000 rows, p99", "ms", batch_p99, naive_batch_p99),
    ]


def model_rows(measured: Measured) -> list[Row]:
    """Another model's rows: no targets (DESIGN.md sets them for the example model)."""
    label = measured.model.label
    figures = (("1 row, p50", "one_row", 50), ("1 row, p99", "one_row", 99), ("1,000 rows, p50", "batch", 50))
    rows = [
        Row(f"warm, {name} ({label})", "ms", measured.p(kind, "ours", q), measured.p(kind, "naive", q))
        for name, kind, q in figures
    ]
    rows.insert(1, Row(f"  of which scoring (service.predict alone), 1 row, p50 ({label})", "ms",
                       measured.p("one_row", "scoring", 50)))  # fmt: skip
    return rows


def cost_rows(durations: list[tuple[str, dict[str, float], dict[str, float]]], memory_mb: int) -> list[Row]:
    """Cost per million one-row predictions from (label, p50 by handler, p99 by handler) in milliseconds."""
    note = (
        f"cost: a million warm one-row invocations, each billed its handler's measured duration (p50, or p99 for "
        f"every request) rounded up to a whole ms, at {memory_mb} MB and the arm64 price of "
        f"${lambda_pricing.USD_PER_GB_SECOND_ARM64:.10f} per GB-second, plus "
        f"${lambda_pricing.USD_PER_MILLION_REQUESTS:.2f} per million requests (AWS Lambda pricing, us-east-1); "
        f"no API Gateway, no cold starts; durations measured on this machine ({platform.machine()}), not on Graviton"
    )
    rows = []
    for label, p50, p99 in durations:
        name = f"cost per million one-row predictions ({label}), arm64 {memory_mb} MB"
        for suffix, durations_ms in (("", p50), (", every request at p99", p99)):
            ours, naive = (
                lambda_pricing.usd_per_million_invocations(durations_ms[handler], memory_mb)
                for handler in ("ours", "naive")
            )
            rows.append(Row(name + suffix, "USD", ours, naive, note=None if rows else note))
    return rows


def _cost_rows(measured: list[Measured], memory_mb: int) -> list[Row]:
    durations = [
        (
            result.model.label,
            {handler: result.p("one_row", handler, 50) for handler in ("ours", "naive")},
            {handler: result.p("one_row", handler, 99) for handler in ("ours", "naive")},
        )
        for result in measured
    ]
    return cost_rows(durations, memory_mb)


def _environment(workload: Workload) -> contextlib.AbstractContextManager[None]:
    """The deployed function's environment plus fake credentials; restored afterwards."""
    return offline_environment({**workload.handler_env, "NAIVE_MODEL_PATH": str(workload.naive_model_path)})


def _events(bodies: list[str], count: int) -> list[dict[str, Any]]:
    return [proxy_event(HttpRequest("POST", "/predict", body=bodies[i % len(bodies)])) for i in range(count)]


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


def _check_answers(ours: Handler, naive: Handler, workload: Workload, model: ServedModel) -> None:
    """Both handlers answer 200 with one prediction per row, Slipway's from `model`, and mostly the same labels."""
    context = FakeLambdaContext()
    body = workload.batch_bodies[0]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        answers = [
            handler(proxy_event(HttpRequest("POST", "/predict", body=body)), context) for handler in (ours, naive)
        ]
    labels = []
    for name, answer in zip(("Slipway", "naive baseline"), answers, strict=True):
        if answer["statusCode"] != 200:
            raise RuntimeError(f"{name} handler answered {answer['statusCode']}: {answer['body'][:500]}")
        predictions = json.loads(answer["body"])["predictions"]
        labels.append([p["label"] for p in predictions])
    served = json.loads(answers[0]["body"])["model_version"]
    if served != model.bundle.version:
        raise RuntimeError(f"Slipway's handler served {served}, not the {model.label} model {model.bundle.version}")
    agreement = sum(a == b for a, b in zip(*labels, strict=False)) / len(labels[0])
    if len(labels[0]) != len(labels[1]) or agreement < 0.99:
        raise RuntimeError(f"the two handlers disagree on the {model.label} model: {agreement:.1%} of labels equal")
