"""Batch scoring in the local stack: the state machine CDK deploys, executed by moto, calling the real handlers."""

from __future__ import annotations

import os
import threading
from typing import Any

from slipway.local.lambda_runtime import cold_start
from slipway.local.services import LocalContext
from slipway.local.stepfunctions import LocalStepFunctions
from stage.environments import worker_environment
from stage.workflows.batch import batch_definition

HANDLER_MODULE = "functions.inference.batch_handler"


class BatchScoringService:
    """Registers the plan and score handlers under their function names and creates the state machine."""

    def __init__(self) -> None:
        self.runner: LocalStepFunctions | None = None
        self.state_machine_arn: str | None = None
        self.bucket = ""

    def start(self, context: LocalContext) -> None:
        settings, names = context.settings, context.names
        os.environ.update(worker_environment(settings, names, service=names.inference_service))
        module = cold_start(HANDLER_MODULE)
        self.bucket = names.artifacts_bucket
        self.runner = LocalStepFunctions(region=settings.region)
        plan = self.runner.register(names.batch_plan_function, module.plan_handler)
        score = self.runner.register(names.batch_score_function, _one_at_a_time(module.score_handler))
        definition = batch_definition(
            plan_function=plan,
            score_function=score,
            bucket=names.artifacts_bucket,
            max_concurrency=settings.batch.max_concurrency,
        )
        self.state_machine_arn = self.runner.create_state_machine(names.batch_state_machine, definition)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None


def _one_at_a_time(handler: Any) -> Any:
    """A Lambda container serves one invocation at a time; moto runs map items in threads sharing this one."""
    lock = threading.Lock()

    def serialised(event: dict[str, Any], context: Any) -> Any:
        with lock:
            return handler(event, context)

    return serialised
