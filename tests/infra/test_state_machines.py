"""Every workflow's state machine as infra.state_machines deploys it: standard, traced, every state logged."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

pytestmark = pytest.mark.infra


@pytest.mark.parametrize(
    ("stage", "name", "execution_data"),
    [
        ("dev", "slipway-dev-retrain", True),
        ("prod", "slipway-prod-rollout", True),
        ("dev", "slipway-dev-batch-scoring", False),  # a batch's rows stay out of the logs
    ],
)
def test_a_state_machine_is_standard_traced_and_logs_every_state(
    templates: dict[str, Template], stage: str, name: str, execution_data: bool
) -> None:
    templates[stage].has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": name,
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": execution_data}),
        },
    )
