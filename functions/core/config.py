"""A function's environment as one pydantic model: the single definition of its variables.

Each field's alias is the variable's name. The function parses its environment with
`from_environ` at cold start (a bad value fails it at once); the CDK app and the
local stack build the same variables from the same model with `to_environment`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, TypeAdapter


class FunctionConfig(BaseModel):
    """Base of every function's configuration model."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    @classmethod
    def variable_names(cls) -> frozenset[str]:
        """The environment variables this model reads."""
        return frozenset(field.alias for field in cls.model_fields.values() if field.alias)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of `field`."""
        alias = cls.model_fields[field].alias
        assert alias is not None, f"{cls.__name__}.{field} has no variable name"
        return alias

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """The configuration in `environ`; other variables are ignored, an empty one counts as unset."""
        names = cls.variable_names()
        return cls.model_validate({key: value for key, value in environ.items() if key in names and value != ""})

    def to_environment(self) -> dict[str, str]:
        """The variables that carry this configuration (unset optional fields are left out)."""
        variables = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is not None and field.alias:
                variables[field.alias] = _text(value, field.annotation)
        return variables


def _text(value: Any, annotation: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        # As the field's declared model: a stage settings section that extends a function's policy
        # (stage.settings.MonitorSettings) travels as that policy alone.
        return TypeAdapter(annotation).dump_json(value).decode()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
