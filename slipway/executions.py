"""Step Functions executions as the CLI and the local stack see them: their ARNs, and waiting for their end."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3

from stage.names import ResourceNames

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class StateMachineError(RuntimeError):
    """An execution did not reach an end state in time."""


@dataclass(frozen=True)
class ExecutionResult:
    """How one execution ended: status, parsed output (None unless it succeeded), error and cause."""

    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def state_machine_arn(names: ResourceNames, state_machine: str) -> str:
    """The ARN of `state_machine` of the stage, in the partition of its region (aws, aws-cn, aws-us-gov)."""
    partition = boto3.session.Session().get_partition_for_region(names.region)
    return f"arn:{partition}:states:{names.region}:{names.account}:stateMachine:{state_machine}"


def wait_for_execution(sfn: Any, execution_arn: str, *, timeout_seconds: float, poll_seconds: float) -> ExecutionResult:
    """Poll until the execution ends; raise StateMachineError if it has not after `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL:
            output = described.get("output")
            return ExecutionResult(
                arn=execution_arn,
                status=described["status"],
                output=json.loads(output) if output else None,
                error=described.get("error"),
                cause=described.get("cause"),
            )
        if time.monotonic() > deadline:
            raise StateMachineError(f"execution {execution_arn} still {described['status']} after {timeout_seconds}s")
        time.sleep(poll_seconds)
