# ruff: noqa: E402  (the clock must start before any other import)
"""One cold start, run as a fresh process by benchmarks/cold_start.py (never imported).

argv: handler module, events file (a JSON list: first the one-row event, then
the 1,000-row event), result file. Imports the handler, answers the first
event (Slipway's handler loads its bundle there), then answers the 1,000-row
event a few times and reads the peak resident set size. With RESTORE_VARIABLE
set, the SnapStart restore hooks run between the import (the init Lambda
snapshots) and the first answer, and their time is measured with it.
"""

import time

STARTED = time.perf_counter()

import importlib
import json
import os
import resource
import sys

BATCH_REPEATS = 3
RESTORE_VARIABLE = "SLIPWAY_BENCH_RESTORE"


class Context:
    """What Powertools reads from the LambdaContext that the runtime passes."""

    function_name = "slipway-bench-inference"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:slipway-bench-inference:live"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    function_version = "$LATEST"
    log_group_name = "/aws/lambda/slipway-bench-inference"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main() -> None:
    module_name, events_path, result_path = sys.argv[1:4]
    with open(events_path) as file:
        first_event, batch_event = json.load(file)
    handler = importlib.import_module(module_name)
    imported = time.perf_counter()
    restored, restore_hooks = None, 0
    if os.environ.get(RESTORE_VARIABLE) == "1":  # a container restored from the snapshot of this init
        from slipway.local.lambda_runtime import restore_from_snapshot

        restored = time.perf_counter()
        restore_hooks = restore_from_snapshot()
    first = handler.lambda_handler(first_event, Context())
    answered_monotonic_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    answered = time.perf_counter()
    statuses = [first["statusCode"]]
    for _ in range(BATCH_REPEATS):
        statuses.append(handler.lambda_handler(batch_event, Context())["statusCode"])
    from benchmarks.peak_memory import peak_rss_mb  # after the timed part: the project root is on PYTHONPATH

    live_model = getattr(handler, "live_model", None)  # Slipway's: how long each step of its model load took
    load_ms = live_model.load_ms(live_model.current().predictor) if live_model is not None else {}
    result = {
        "load_ms": load_ms,
        "import_s": imported - STARTED,
        "first_answer_s": answered - STARTED,
        "restored_first_answer_s": answered - restored if restored is not None else None,
        "restore_hooks": restore_hooks,
        "first_answer_monotonic_ns": answered_monotonic_ns,
        "max_rss_mb": peak_rss_mb(),
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "statuses": statuses,
    }
    with open(result_path, "w") as file:
        json.dump(result, file)


main()
