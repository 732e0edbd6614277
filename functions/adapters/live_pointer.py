"""The live pointer in an SSM parameter; the parameter's own history is the audit trail."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.core.errors import RegistryError
from functions.core.registry import LivePointer


class SsmPointerStore:
    """Reads and writes the live pointer as JSON in one String parameter."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._ssm = ssm
        self._name = name

    def read(self) -> LivePointer:
        try:
            value = self._ssm.get_parameter(Name=self._name)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise RegistryError(f"the live pointer {self._name} does not exist; is the stack deployed?") from exc
            raise
        return LivePointer.model_validate_json(value)

    def write(self, pointer: LivePointer) -> None:
        self._ssm.put_parameter(
            Name=self._name, Value=pointer.model_dump_json(), Type="String", Overwrite=True, Tier="Standard"
        )

    def history(self) -> list[LivePointer]:
        paginator = self._ssm.get_paginator("get_parameter_history")
        entries: list[LivePointer] = []
        for page in paginator.paginate(Name=self._name):
            entries.extend(LivePointer.model_validate_json(item["Value"]) for item in page["Parameters"])
        return entries
