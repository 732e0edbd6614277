"""What a one-row /predict request logs stays within what a million of them may cost (benchmarks/cost.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import cost, targets
from functions.inference.metrics import LatencyBatch
from functions.training.train import Bundle
from stage.settings import load_settings
from tests.conftest import example_row


def test_a_latency_batch_goes_out_when_full() -> None:
    batch = LatencyBatch(size=3, clock=lambda: 0.0)
    assert batch.add(0.1) == [] and batch.add(0.2) == []
    assert batch.add(0.3) == [0.1, 0.2, 0.3]
    assert batch.add(0.4) == []  # a new batch


def test_a_latency_batch_goes_out_once_its_oldest_has_waited() -> None:
    now = [100.0]
    batch = LatencyBatch(size=10, max_age_s=60, clock=lambda: now[0])
    assert batch.add(0.1) == []
    now[0] = 159.0
    assert batch.add(0.2) == []
    now[0] = 160.0
    assert batch.add(0.3) == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("api_type", sorted(targets.COST_PER_MILLION_USD))
def test_a_one_row_request_logs_less_than_its_front_doors_target_allows(
    live_bundle: Bundle, handler_module: Any, api_type: str
) -> None:
    # Dev's environment captures every request, so the capture lines are measured and priced at prod's rate.
    bodies = [json.dumps({"instances": [example_row(live_bundle, index)]}) for index in range(20)]
    logged = cost.logged_bytes(handler_module.lambda_handler, bodies, calls=50)
    dev = load_settings("dev").inference
    rate = load_settings(cost.TARGET_CAPTURE_STAGE).capture.sampling_rate
    # Lambda billed its 1 ms minimum: the duration is the bench's to measure, the bytes are this test's.
    priced = cost.costs(1.0, logged, capture_rate=rate, memory_mb=dev.memory_mb, architecture=dev.architecture)
    target = targets.COST_PER_MILLION_USD[api_type]
    budget = cost.log_byte_budget(
        api_type, target, memory_mb=dev.memory_mb, architecture=dev.architecture,
        capture_storage_usd=priced[api_type].capture_storage,
    )  # fmt: skip
    assert priced[api_type].log_bytes <= budget, (api_type, logged, priced[api_type], budget)
    assert priced[api_type].total <= target
