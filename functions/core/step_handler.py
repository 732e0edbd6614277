"""A state machine's Lambda step: its input parsed as the step's model, one use case called, its output as JSON.

An input that is not the step's model raises MalformedEvent (functions.core.event_input), which
the state machines never retry. Each retrain and rollout step is one function of its parsed
input under its module's `StepHandlers`, which adds what every step's handler does around it:
the Lambda context in the logs, a trace, and the output dumped (and logged when the step says so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from functions.core.event_input import parse_event

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Tracer
    from aws_lambda_powertools.utilities.typing import LambdaContext

Input = TypeVar("Input", bound=BaseModel)
Output = BaseModel | dict[str, Any]
Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]


class StepHandlers:
    """Makes a module's step functions Lambda handlers, with the module's logger and tracer."""

    def __init__(self, logger: Logger, tracer: Tracer) -> None:
        self.logger = logger
        self.tracer = tracer

    def __call__(
        self, model: type[Input], *, logged: str | None = None
    ) -> Callable[[Callable[[Input], Output]], Handler]:
        """Make `step(request)` the handler of `model` events; `logged`: the message its output is logged with."""

        def decorate(step: Callable[[Input], Output]) -> Handler:
            @self.logger.inject_lambda_context
            @self.tracer.capture_lambda_handler
            @functools.wraps(step)
            def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
                output = step(parse_event(model, event))
                answer = output.model_dump(mode="json") if isinstance(output, BaseModel) else output
                if logged:
                    self.logger.info(logged, extra=answer)
                return answer

            return handler

        return decorate
