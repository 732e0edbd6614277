"""`slipway score`: start the batch scoring state machine for a prefix, wait, and summarise the run.

The same on AWS and on the local stack (where the machine runs inside the
local stack's moto, calling the real handlers).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from functions.adapters import factory
from functions.core import batch
from functions.core.batch import LedgerEntry
from functions.inference import batch_service
from slipway.target import Target

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def state_machine_arn(target: Target) -> str:
    names = target.names
    return f"arn:aws:states:{names.region}:{names.account}:stateMachine:{names.batch_state_machine}"


def execution_input(input_prefix: str, output_prefix: str, run_id: str | None = None) -> dict[str, Any]:
    batch.check_prefixes(input_prefix, output_prefix)
    run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    return {"input_prefix": input_prefix, "output_prefix": output_prefix, "run_id": run_id}


def run_summary(bucket: str, output: dict[str, Any]) -> dict[str, Any]:
    """What a finished execution scored, from its manifest and the ledger entries it wrote."""
    plan = output["plan"]["result"]
    store = factory.batch_store(bucket)
    items = batch_service.read_manifest(store, plan["manifest_key"]) if plan["count"] else []
    entries = [LedgerEntry.model_validate_json(store.get(batch.ledger_key(item))[0]) for item in items]
    return {"unchanged": plan["unchanged"], **batch_service.summary(entries)}


def run_batch(target: Target, *, input_prefix: str, output_prefix: str, timeout_seconds: float = 3600) -> int:
    states = factory.client("stepfunctions")
    started = states.start_execution(
        stateMachineArn=state_machine_arn(target),
        input=json.dumps(execution_input(input_prefix, output_prefix)),
    )
    print(f"started {started['executionArn']}", flush=True)
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = states.describe_execution(executionArn=started["executionArn"])
        if described["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            print(f"slipway: still {described['status']} after {timeout_seconds:.0f} s; see the console")
            return 1
        time.sleep(0.2 if target.local else 5)
    if described["status"] != "SUCCEEDED":
        print(f"slipway: batch scoring {described['status']}: {described.get('error')}: {described.get('cause')}")
        return 1
    summary = run_summary(target.names.artifacts_bucket, json.loads(described["output"]))
    print(
        f"scored {summary['objects']} new or changed object(s), {summary['rows']} rows, {summary['errors']} "
        f"refused row(s), model {', '.join(summary['model_versions']) or '-'}; {summary['unchanged']} unchanged"
    )
    return 0
