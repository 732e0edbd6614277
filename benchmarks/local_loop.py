"""The local loop, timed phase by phase: train, serve 1,000 requests, detect drift, retrain, promote.

The same stack and steps as `slipway demo`: moto on loopback, the example model
trained and promoted, 1,000 one-row requests over HTTP (400 as trained, 600
with the size features shifted, and the true labels of those 600), the capture
shipped and one monitor cycle, the DriftDetected event starting the retrain
state machine, whose Register and Promote states move the live pointer.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.table import Row
from benchmarks.targets import LOCAL_LOOP_S
from benchmarks.workload import Workload
from functions.adapters import factory
from slipway.demo import SHIFT, await_drift_run, free_port, pipeline_log
from slipway.local.monitoring import LocalMonitoring, monitor_once
from slipway.local.retrain_service import RetrainService
from slipway.local.stack import LocalStack
from slipway.local.traffic import example_rows, send_feedback, serve, shifted
from slipway.target import resolve

NORMAL_REQUESTS = 400
SHIFTED_REQUESTS = 600
SEED = 11


def run(workload: Workload, *, quick: bool = False) -> list[Row]:
    """One pass of the loop (quick or not: it is one pass either way)."""
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory(prefix="slipway-loop-") as logs, pipeline_log(Path(logs) / "retrain.log"):
            phases, facts = _loop(Path(logs))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        factory.reset_clients()
    total = sum(phases.values())
    rows = [Row(f"local loop: {name}", "s", seconds) for name, seconds in phases.items()]
    rows.append(
        Row(
            "local loop: total",
            "s",
            total,
            target=f"≤ {LOCAL_LOOP_S:g} s",
            met=total <= LOCAL_LOOP_S and facts["promoted"],
            note=(
                f"moto and the gateway in-process; {NORMAL_REQUESTS + SHIFTED_REQUESTS} one-row HTTP requests "
                f"and {SHIFTED_REQUESTS} labels; drift on {facts['drifted']} features (share "
                f"{facts['drift_share']:.2f}); pipeline {facts['status']}, gate {facts['verdict']} "
                f"({facts['data_rows']} training rows); live {facts['live']}"
            ),
        )
    )
    return rows


def _loop(log_dir: Path) -> tuple[dict[str, float], dict[str, Any]]:
    phases: dict[str, float] = {}
    normal = example_rows(NORMAL_REQUESTS, seed=SEED)
    drifting = shifted(example_rows(SHIFTED_REQUESTS, seed=SEED + 1), SHIFT)
    stack = LocalStack(port=free_port(), aws_port=free_port(), log_dir=log_dir)
    try:
        started = time.perf_counter()
        stack.start()
        phases["start moto and train + promote the example model"] = time.perf_counter() - started

        started = time.perf_counter()
        serve(stack.url, normal.instances)
        answered = serve(stack.url, drifting.instances)
        send_feedback(stack.url, answered, drifting.labels)
        phases[f"serve {NORMAL_REQUESTS + SHIFTED_REQUESTS:,} requests (+ {SHIFTED_REQUESTS} labels)"] = (
            time.perf_counter() - started
        )

        started = time.perf_counter()
        target = resolve(stack.stage)
        shipper = stack.service(LocalMonitoring).shipper
        if shipper is not None:
            shipper.ship()
        cycle = monitor_once(target.settings, target.names)
        phases["detect drift (ship capture, monitor cycle)"] = time.perf_counter() - started
        if cycle.event is None:
            raise RuntimeError(f"no drift detected on the shifted traffic: {cycle.report.verdict}")

        started = time.perf_counter()
        result, _states = await_drift_run(stack)
        pipeline = time.perf_counter() - started
        promote = _promote_seconds(stack.service(RetrainService), result.arn)
        phases["retrain (event, Prepare, Train, Evaluate, gate)"] = pipeline - promote
        phases["promote (Register, Promote)"] = promote
        decision = (result.output or {}).get("decision", {})
        facts = {
            "status": result.status,
            "verdict": decision.get("verdict"),
            "promoted": result.succeeded and decision.get("verdict") == "promote",
            "data_rows": (result.output or {}).get("data", {}).get("rows"),
            "drifted": len(cycle.report.drifted_features),
            "drift_share": cycle.report.drift_share,
            "live": target.registry().live().version,
        }
        return {name: round(seconds, 3) for name, seconds in phases.items()}, facts
    finally:
        stack.stop()


def _promote_seconds(service: RetrainService, execution_arn: str) -> float:
    """From entering Register to leaving Promote, by the execution's own event times."""
    assert service.retrain is not None
    entered: dict[str, datetime] = {}
    exited: dict[str, datetime] = {}
    for event in service.retrain.runner.history(execution_arn):
        if "stateEnteredEventDetails" in event:
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        if "stateExitedEventDetails" in event:
            exited[event["stateExitedEventDetails"]["name"]] = event["timestamp"]
    if "Register" not in entered or "Promote" not in exited:
        return 0.0
    return (exited["Promote"] - entered["Register"]).total_seconds()
