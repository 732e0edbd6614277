"""A rollout's cost on the request path: warm latency in shadow and canary, and the memory of two models.

All in one run, through the real handler against moto: the example bundle is live, a second
version (the same recipe under another seed) is registered, and the pointer moves from no
rollout to a shadow of 100 % (every request scored twice) to a canary of 10 % (one request in
ten answered by the candidate). The baseline column is the same handler with no rollout.
Memory is the process's resident set after the candidate is loaded beside the live model,
against before.
"""

from __future__ import annotations

from typing import Any

import boto3
import numpy as np
from moto import mock_aws

from benchmarks.table import Row
from benchmarks.warm_latency import OURS_MODULE, _environment, _latencies
from benchmarks.workload import Workload, seed_registry
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.registry import Registry
from functions.training.train import train_bundle
from slipway.local.lambda_runtime import cold_start
from slipway.local.recipes import variant

ROUNDS = 4


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _follow(module: Any) -> None:
    """Make the warm container read the moved pointer now (as it would at its next refresh), then keep it."""
    live_model = module.live_model
    refresh, live_model._refresh_seconds = live_model._refresh_seconds, 0.0
    live_model.current()
    live_model._refresh_seconds = refresh


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    iterations, warmup = (2000, 200) if not quick else (200, 20)
    candidate = train_bundle(variant(seed_offset=1))
    with _environment(workload), mock_aws():
        s3, ssm = boto3.client("s3"), boto3.client("ssm")
        seed_registry(s3, ssm, workload)
        names = workload.names
        registry = Registry(
            S3ModelStore(s3, names.artifacts_bucket), SsmPointerStore(ssm, names.live_pointer_parameter)
        )
        registry.register(candidate.manifest, candidate.onnx_bytes)
        module = cold_start(OURS_MODULE)
        handler = module.lambda_handler
        _latencies(handler, workload.one_row_bodies, warmup, warmup)  # the container warm before any figure
        before = _resident_mb()
        samples: dict[str, list[np.ndarray]] = {"none": [], "shadow": [], "canary": []}
        after = before
        # Rounds of every mode in turn, so that the machine's drift during the run falls on all three alike.
        for _ in range(ROUNDS):
            for mode in samples:
                if mode == "none":
                    registry.end_rollout()
                else:
                    registry.start_rollout(candidate.version, mode, 100 if mode == "shadow" else 10, "benchmark")
                _follow(module)
                samples[mode].append(_latencies(handler, workload.one_row_bodies, iterations // ROUNDS, warmup))
                if mode == "shadow":
                    after = max(after, _resident_mb())
        alone, shadow, canary = (np.concatenate(samples[mode]) for mode in ("none", "shadow", "canary"))

    def p(samples: np.ndarray, q: float) -> float:
        return float(np.percentile(samples, q))

    method = (
        f"rollout: {iterations} one-row requests per mode in {ROUNDS} rounds of the three modes in turn, each after "
        f"{warmup} warm-up calls, through lambda_handler against moto, the pointer re-read once after each move "
        "(as a warm container does at its refresh); baseline = the same handler with no rollout, in the same run; "
        "memory = VmRSS of this process with the candidate loaded beside the live model, baseline = before it was"
    )
    return [
        Row("rollout: shadow 100 %, 1 row, p50", "ms", p(shadow, 50), p(alone, 50), note=method),
        Row("rollout: shadow 100 %, 1 row, p99", "ms", p(shadow, 99), p(alone, 99)),
        Row("rollout: canary 10 %, 1 row, p50", "ms", p(canary, 50), p(alone, 50)),
        Row("rollout: canary 10 %, 1 row, p99", "ms", p(canary, 99), p(alone, 99)),
        Row("rollout: memory with the candidate loaded", "MB", after, before),
        Row("rollout: memory the candidate adds", "MB", after - before),
    ]
