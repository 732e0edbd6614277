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
from slipway.executions import StateMachineError, state_machine_arn, wait_for_execution
from slipway.target import Target


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
        stateMachineArn=state_machine_arn(target.names, target.names.batch_state_machine),
        input=json.dumps(execution_input(input_prefix, output_prefix)),
    )
    print(f"started {started['executionArn']}", flush=True)
    try:
        result = wait_for_execution(
            states, started["executionArn"], timeout_seconds=timeout_seconds, poll_seconds=0.2 if target.local else 5
        )
    except StateMachineError as exc:
        print(f"slipway: {exc}; see the console")
        return 1
    if not result.succeeded:
        print(f"slipway: batch scoring {result.status}: {result.error}: {result.cause}")
        return 1
    summary = run_summary(target.names.artifacts_bucket, result.output)
    print(
        f"scored {summary['objects']} new or changed object(s), {summary['rows']} rows, {summary['errors']} "
        f"refused row(s), model {', '.join(summary['model_versions']) or '-'}; {summary['unchanged']} unchanged"
    )
    return 0
