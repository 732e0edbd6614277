"""What the outlier detector costs per request: the model's scoring with it against without it, in one run.

Both predictors hold the same trained example model; the baseline's graph has the detector's
nodes, input and output taken out (and its manifest no detector), so the difference is the
distance computed in the same ONNX Runtime session plus the score and flag on each answer.
Measured on `Predictor.encode` + `score`, the part of a request the detector is in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from benchmarks.table import Row
from benchmarks.workload import BATCH_ROWS, Workload
from functions.core.predictor import OUTLIER_INPUT, OUTLIER_OUTPUT, Predictor
from functions.training.train import Bundle

ROUNDS = 4


def without_detector(bundle: Bundle) -> Predictor:
    """The same model with no outlier detector in its graph or manifest."""
    graph = onnx.load_from_string(bundle.onnx_bytes)
    body = graph.graph
    for field, drop in (
        (body.node, lambda item: item.name.startswith("outlier.")),
        (body.initializer, lambda item: item.name.startswith("outlier.")),
        (body.input, lambda item: item.name == OUTLIER_INPUT),
        (body.output, lambda item: item.name == OUTLIER_OUTPUT),
    ):
        kept = [item for item in field if not drop(item)]
        del field[:]
        field.extend(kept)
    onnx_bytes = graph.SerializeToString()
    manifest = bundle.manifest.model_copy(update={"outliers": None})
    return Predictor(manifest.with_version(onnx_bytes), onnx_bytes)


def _timings(call: Callable[[], Any], iterations: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    samples = np.empty(iterations)
    for i in range(iterations):
        started = time.perf_counter()
        call()
        samples[i] = (time.perf_counter() - started) * 1000
    return samples


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    iterations, warmup = (4000, 200) if not quick else (400, 20)
    bundle = workload.bundle
    with_it = Predictor(bundle.manifest, bundle.onnx_bytes)
    alone = without_detector(bundle)
    table = bundle.manifest.feature_spec.names
    one_rows = [json.loads(body)["instances"] for body in workload.one_row_bodies]
    batch = json.loads(workload.batch_bodies[0])["instances"]
    assert [p["label"] for p in with_it.score(with_it.encode(batch))] == [
        p["label"] for p in alone.score(alone.encode(batch))
    ], "the detector must not change an answer"
    samples: dict[tuple[str, int], list[np.ndarray]] = {}
    # Rounds of both models in turn, so that the machine's drift during the run falls on both alike.
    for _ in range(ROUNDS):
        for name, predictor in (("with", with_it), ("without", alone)):
            rows = iter(one_rows * (iterations // len(one_rows) + 1))
            one = _timings(lambda p=predictor, r=rows: p.score(p.encode(next(r))), iterations // ROUNDS, warmup)
            many = _timings(lambda p=predictor: p.score(p.encode(batch)), max(iterations // 40 // ROUNDS, 5), 5)
            samples.setdefault((name, 1), []).append(one)
            samples.setdefault((name, BATCH_ROWS), []).append(many)

    def p50(name: str, rows: int) -> float:
        return float(np.percentile(np.concatenate(samples[(name, rows)]), 50))

    method = (
        f"outliers: Predictor.encode + score of the example model ({len(table)} features) with its outlier detector "
        f"and the same graph without it, {ROUNDS} rounds of both in turn; one row: {iterations} calls over the "
        f"example rows; {BATCH_ROWS} rows: {max(iterations // 40, 5 * ROUNDS)} calls; p50"
    )
    return [
        Row("outliers: scoring with the detector, 1 row, p50", "ms", p50("with", 1), p50("without", 1), note=method),
        Row("outliers: the detector's cost, 1 row", "ms", p50("with", 1) - p50("without", 1)),
        Row(
            f"outliers: scoring with the detector, {BATCH_ROWS:,} rows, p50",
            "ms",
            p50("with", BATCH_ROWS),
            p50("without", BATCH_ROWS),
        ),
        Row(
            f"outliers: the detector's cost, {BATCH_ROWS:,} rows",
            "ms",
            p50("with", BATCH_ROWS) - p50("without", BATCH_ROWS),
        ),
    ]
