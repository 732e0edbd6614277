"""Cold start and peak memory: each handler in a fresh Python process, from interpreter start to first answer.

Slipway's child runs against moto as a server on loopback (ThreadedMotoServer
in this process, seeded like the CDK app's resources, reached through
AWS_ENDPOINT_URL), so it reads its pointer from SSM and its bundle from S3 as
on Lambda. The naive child loads its joblib file from local disk, which
favours it (no S3 read). Figures are medians over several runs; runs of the
two handlers alternate. "With caches" runs after one untimed run has written
__pycache__; "without" sets PYTHONDONTWRITEBYTECODE=1 and a fresh, empty
PYTHONPYCACHEPREFIX per run, so nothing is read from or written to a cache —
the standard library included, which is harsher than Lambda (its runtime
ships compiled), so that figure is an upper bound.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from benchmarks import targets
from benchmarks.table import Row
from benchmarks.warm_latency import NAIVE_MODULE, OURS_MODULE
from benchmarks.workload import FAKE_CREDENTIALS, PROJECT_ROOT, REGION, Workload, seed_registry
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.registry import Registry
from slipway.local.lambda_runtime import HttpRequest, proxy_event

CHILD_SCRIPT = Path(__file__).with_name("cold_start_child.py")
RESTORE_VARIABLE = "SLIPWAY_BENCH_RESTORE"  # cold_start_child.py's own name for it
CHILD_TIMEOUT_S = 120
LOOPBACK = "127.0.0.1"
# What the Lambda runtime sets that changes what a cold start does: with LAMBDA_TASK_ROOT the X-Ray
# SDK (imported by Powertools' Tracer) samples locally, as on Lambda, instead of creating two X-Ray
# clients at import (about 0.1 s that no deployed function pays).
LAMBDA_VARIABLES = {
    "LAMBDA_TASK_ROOT": str(PROJECT_ROOT),
    "AWS_LAMBDA_FUNCTION_NAME": "slipway-bench-inference",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
}
# Variables of this shell that would change what the child measures.
_DROPPED = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONSTARTUP")


@dataclass(frozen=True)
class ColdStart:
    """One child process: wall time from spawn to first answer (parent's clock) and what the child measured."""

    wall_s: float
    first_answer_s: float
    import_s: float
    max_rss_mb: float
    ru_maxrss_mb: float
    load_ms: dict[str, float]  # Slipway's model load, step by step (LiveModel.load_ms); empty for the baseline
    restored_first_answer_s: float | None  # with the restore hooks run before the first answer: hooks to answer


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    repeats = 2 if quick else 5
    extra_repeats = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="slipway-cold-") as scratch:
        scratch_dir = Path(scratch)
        events_path = scratch_dir / "events.json"
        events = [
            proxy_event(HttpRequest("POST", "/predict", body=workload.one_row_bodies[0])),
            proxy_event(HttpRequest("POST", "/predict", body=workload.batch_bodies[0])),
        ]
        events_path.write_text(json.dumps(events))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=_free_port(), verbose=False)
        server.start()
        try:
            endpoint = f"http://{LOOPBACK}:{server._port}"  # the port we chose
            s3, ssm = _client("s3", endpoint), _client("ssm", endpoint)
            seed_registry(s3, ssm, workload)
            env = _child_env(workload, endpoint)
            runs = _measure(env, events_path, scratch_dir, repeats)
            restore_env = {**env, RESTORE_VARIABLE: "1"}
            restored = [_spawn(OURS_MODULE, restore_env, events_path, scratch_dir) for _ in range(repeats)]
            registry = Registry(
                S3ModelStore(s3, workload.names.artifacts_bucket),
                SsmPointerStore(ssm, workload.names.live_pointer_parameter),
            )
            extras = []
            for model in workload.extra_models:  # each made live in turn, with caches only
                registry.register(model.bundle.manifest, model.bundle.onnx_bytes)
                registry.promote(model.bundle.version, "benchmark")
                model_env = {**env, "NAIVE_MODEL_PATH": str(model.naive_model_path)}
                extras.append((model.label, _measure(model_env, events_path, scratch_dir, extra_repeats, caches=False)))
        finally:
            server.stop()

    def median(key: str, attr: str, of: dict[str, list[ColdStart]] = runs) -> float:
        return statistics.median(getattr(run, attr) for run in of[key])

    ours_cached, naive_cached = median("ours", "wall_s"), median("naive", "wall_s")
    ours_cold, naive_cold = median("ours-nocache", "wall_s"), median("naive-nocache", "wall_s")
    method = (
        f"cold: median of {repeats} fresh processes each ({sys.executable}, Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, not the Lambda runtime); wall time measured by the parent "
        "from just before spawning to the child's first answer, so it includes interpreter start "
        "(CLOCK_MONOTONIC, shared by both processes). Slipway reads pointer and bundle from moto on loopback; "
        "the baseline reads its joblib file from local disk (favours the baseline). Without caches: "
        "PYTHONDONTWRITEBYTECODE=1 and an empty PYTHONPYCACHEPREFIX per run, stdlib included (an upper bound). "
        f"The child has the variables Lambda sets ({', '.join(LAMBDA_VARIABLES)})"
    )
    extra_note = (
        f"the other models: median of {extra_repeats} fresh processes each with bytecode caches, each model made "
        "live in the same moto server in turn (registered and promoted), against its own pickled pipeline"
    )
    return [
        Row(
            "cold start, with bytecode caches",
            "s",
            ours_cached,
            naive_cached,
            target=f"≤ {targets.COLD_START_S} s, ≥ {targets.COLD_START_SPEEDUP:.0f}x",
            met=ours_cached <= targets.COLD_START_S and naive_cached / ours_cached >= targets.COLD_START_SPEEDUP,
            note=method,
        ),
        Row("cold start, without bytecode caches", "s", ours_cold, naive_cold),
        Row(
            "cold start, in-process (first line → first answer), with caches",
            "s",
            median("ours", "first_answer_s"),
            median("naive", "first_answer_s"),
            note="measured inside the child with time.perf_counter from its first line: no interpreter start",
        ),
        Row(
            "  of which importing the handler module (Slipway: the model load included)",
            "s",
            median("ours", "import_s"),
            median("naive", "import_s"),
            note="both load their model at import: Slipway during init, as Lambda runs it; the baseline unpickles",
        ),
        *_load_rows(runs["ours"]),
        Row(
            "first answer after a SnapStart restore: the restore hooks, new clients, pointer re-read, one row",
            "ms",
            statistics.median(run.restored_first_answer_s for run in restored if run.restored_first_answer_s) * 1000,
            note=(
                f"restore: median of {repeats} fresh processes that run the registered after-restore hooks "
                "(slipway.local.lambda_runtime.restore_from_snapshot) between the import and the first answer, timed "
                "from the hooks to the answer; what a restored container does on its first request beyond Lambda's "
                "own restore of the snapshot, which only AWS measures (Restore Duration in the REPORT line)"
            ),
        ),
        *(
            Row(
                f"cold start, with bytecode caches ({label})",
                "s",
                median("ours", "wall_s", of),
                median("naive", "wall_s", of),
                note=None if index else extra_note,
            )
            for index, (label, of) in enumerate(extras)
        ),
        Row(
            "peak memory (RSS) after 1 + 3x1,000-row requests",
            "MB",
            median("ours", "max_rss_mb"),
            median("naive", "max_rss_mb"),
            note=(
                "peak RSS (VmHWM of /proc/self/status) of the cold-start children with caches, median; "
                "resource.getrusage(RUSAGE_SELF).ru_maxrss is kept in bench.json but reports this parent's peak, "
                "which Linux carries across fork and exec"
            ),
        ),
    ]


def _load_rows(runs: list[ColdStart]) -> list[Row]:
    """Slipway's model load step by step (the example model; medians of the cached runs)."""
    steps = {
        "pointer_read": "live pointer read (SSM GetParameter, moto on loopback)",
        "bundle_read": "bundle read (S3 GetObject x2: manifest and graph, moto on loopback)",
        "hash_check": "hash check (SHA-256 of the graph against the version)",
        "session": "ONNX Runtime session creation",
        "batch_invariance_probe": "batch-invariance probe (probe rows alone and together)",
    }
    return [
        Row(f"  of which {name}", "ms", statistics.median(run.load_ms[step] for run in runs))
        for step, name in steps.items()
    ]


def _measure(
    env: dict[str, str], events_path: Path, scratch: Path, repeats: int, *, caches: bool = True
) -> dict[str, list[ColdStart]]:
    """Cold starts of both handlers, alternating; with `caches`, also runs without bytecode caches."""
    modules = {"ours": OURS_MODULE, "naive": NAIVE_MODULE}
    for module in modules.values():  # one untimed run each writes the bytecode caches
        _spawn(module, env, events_path, scratch)
    runs: dict[str, list[ColdStart]] = {key: [] for key in ("ours", "naive", "ours-nocache", "naive-nocache")}
    for repeat in range(repeats):
        for key, module in modules.items():
            runs[key].append(_spawn(module, env, events_path, scratch))
            if not caches:
                continue
            no_cache = {
                **env,
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix=f"pycache-{key}-{repeat}-", dir=scratch),
            }
            runs[f"{key}-nocache"].append(_spawn(module, no_cache, events_path, scratch))
    return runs


def _spawn(module: str, env: dict[str, str], events_path: Path, scratch: Path) -> ColdStart:
    result_path = scratch / "result.json"
    result_path.unlink(missing_ok=True)
    spawned = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    completed = subprocess.run(
        [sys.executable, str(CHILD_SCRIPT), module, str(events_path), str(result_path)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,  # EMF metrics and logs
        stderr=subprocess.PIPE,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0 or not result_path.exists():
        raise RuntimeError(
            f"cold-start child for {module} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    result = json.loads(result_path.read_text())
    if any(status != 200 for status in result["statuses"]):
        raise RuntimeError(f"cold-start child for {module} answered {result['statuses']}")
    if env.get(RESTORE_VARIABLE) and not result["restore_hooks"]:
        raise RuntimeError(f"{module} registered no SnapStart restore hook: there is no restore to measure")
    return ColdStart(
        wall_s=(result["first_answer_monotonic_ns"] - spawned) / 1e9,
        first_answer_s=result["first_answer_s"],
        import_s=result["import_s"],
        max_rss_mb=result["max_rss_mb"],
        ru_maxrss_mb=result["ru_maxrss_kb"] / 1024,
        load_ms=result["load_ms"],
        restored_first_answer_s=result["restored_first_answer_s"],
    )


def _child_env(workload: Workload, endpoint: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED}
    env.update(workload.handler_env)
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["NAIVE_MODEL_PATH"] = str(workload.naive_model_path)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(LAMBDA_VARIABLES)
    return env


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
