"""Starting the retrain state machine and sending notifications, behind two small classes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any


class StepFunctionsStarter:
    """Starts executions of one state machine (the retrain pipeline, a rollout)."""

    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self.state_machine_arn = state_machine_arn

    def start(self, reason: str, *, at: datetime | None = None, extra: dict[str, Any] | None = None) -> str:
        """Start a run named after its time (sortable, unique) with {"reason", **extra}; return the execution ARN."""
        stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
        started = self._sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=f"{stamp}-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"reason": reason, **(extra or {})}),
        )
        return str(started["executionArn"])


class SnsNotifier:
    """Publishes to the stage's notification topic (nothing when there is none)."""

    def __init__(self, sns: Any, topic_arn: str | None) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def notify(self, subject: str, message: dict[str, Any]) -> None:
        if self.topic_arn:
            self._sns.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=json.dumps(message, default=str))
