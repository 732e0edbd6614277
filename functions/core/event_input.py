"""A handler's input parsed at its edge: the pydantic model it takes, or MalformedEvent naming what is wrong.

The message names each broken field and the rule, never the value sent (an event can carry
anything, and the message reaches logs, failure queues and notifications).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from functions.core.errors import MalformedEvent

Model = TypeVar("Model", bound=BaseModel)
_LISTED = 5


def parse_event(model: type[Model], event: object) -> Model:
    """`event` as `model`; MalformedEvent when it is not one (wrong type, fields missing or invalid)."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise MalformedEvent(describe(model, exc)) from None


def parse_json(model: type[Model], text: str | bytes) -> Model:
    """JSON text (an SQS message body) as `model`; MalformedEvent when it is not JSON, or not one."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise MalformedEvent(describe(model, exc)) from None


def describe(model: type[BaseModel], exc: ValidationError) -> str:
    """`exc` in one line: the first few broken fields with their rules, without the values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'the input'}: {e['msg']}" for e in errors[:_LISTED])
    more = f" (and {len(errors) - _LISTED} more)" if len(errors) > _LISTED else ""
    return f"does not match {model.__name__}: {fields}{more}"


class SqsRecord(BaseModel):
    """What the queue handlers read of an SQS record (Lambda sends more)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    messageId: str  # noqa: N815 (SQS's own field name)
    body: str


class SqsEvent(BaseModel):
    """An SQS event as a Lambda event source mapping sends it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    Records: list[SqsRecord]
