"""A Step Functions state machine as every workflow of the stack deploys it: standard, traced, fully logged."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.grants import allow
from infra.lambda_function import FunctionDefaults
from infra.nag import acknowledge


def state_machine(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    definition: dict[str, Any],
    timeout: Duration,
    defaults: FunctionDefaults,
    invokes: tuple[str, list[str]],
    include_execution_data: bool = True,
) -> sfn.StateMachine:
    """State machine `name` (in `scope`, its log group `<construct_id>Logs`) running `definition`.

    `invokes` is the statement id and the function ARNs its role may invoke; logging and tracing
    need Resource '*', acknowledged here once.
    """
    log_group = defaults.log_group(scope, f"{construct_id}Logs", f"/aws/vendedlogs/states/{name}")
    machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_name=name,
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_string(Stack.of(scope).to_json_string(definition)),
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=include_execution_data
        ),
    )
    sid, functions = invokes
    allow(machine.role, sid, ["lambda:InvokeFunction"], functions)
    acknowledge(
        machine.role,
        "AwsSolutions-IAM5[Resource::*]",
        "Step Functions logging (logs:CreateLogDelivery and related) and X-Ray tracing "
        "(xray:PutTraceSegments) support no resource-level permissions, so AWS requires Resource '*'.",
    )
    return machine
