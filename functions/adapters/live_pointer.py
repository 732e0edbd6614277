"""The live pointer in an SSM parameter; the parameter's own history is the audit trail.

SSM has no conditional write, but it has an atomic create: `PutParameter` without
`Overwrite` fails when the parameter exists. The pointer's lock is such a sibling
parameter, created by the writer that holds it and deleted when it is done; a lock
left by a writer that died is taken over once its lease has run out.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code
from functions.core.errors import RegistryError
from functions.core.registry import POINTER_LOCK_SUFFIX, LivePointer
from functions.core.telemetry import service_logger

LOCK_LEASE_SECONDS = 30.0  # longer than any read-and-write of the pointer takes
LOCK_WAIT_SECONDS = 20.0  # how long a second writer waits before it gives up


class SsmPointerStore:
    """Reads and writes the live pointer as JSON in one String parameter."""

    def __init__(
        self,
        ssm: Any,
        name: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ssm = ssm
        self._name = name
        self._lock = name + POINTER_LOCK_SUFFIX
        self._clock = clock
        self._sleep = sleep

    def read(self) -> LivePointer:
        try:
            value = self._ssm.get_parameter(Name=self._name)["Parameter"]["Value"]
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
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

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the pointer's lock for the block; RegistryError when another writer keeps it too long."""
        token = uuid.uuid4().hex
        deadline = self._clock() + LOCK_WAIT_SECONDS
        delay = 0.05
        while not self._acquire(token):
            holder = self._holder()
            if holder is not None and holder["expires"] < self._clock():
                service_logger(__name__).warning(
                    "taking over an expired pointer lock", extra={"lock": self._lock, "holder": holder}
                )
                self._delete_lock()
                continue
            if self._clock() >= deadline:
                raise RegistryError(
                    f"the live pointer {self._name} is being moved by another promotion or rollback; try again"
                )
            self._sleep(delay)
            delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            holder = self._holder()
            if holder is not None and holder["token"] == token:
                self._delete_lock()
            else:  # our lease ran out and another writer took over: its lock is not ours to delete
                service_logger(__name__).warning("pointer lock lost before release", extra={"lock": self._lock})

    def _acquire(self, token: str) -> bool:
        value = json.dumps({"token": token, "expires": self._clock() + LOCK_LEASE_SECONDS})
        try:
            self._ssm.put_parameter(Name=self._lock, Value=value, Type="String", Overwrite=False, Tier="Standard")
        except ClientError as exc:
            if error_code(exc) == "ParameterAlreadyExists":
                return False
            raise
        return True

    def _holder(self) -> dict[str, Any] | None:
        try:
            value = self._ssm.get_parameter(Name=self._lock)["Parameter"]["Value"]
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise
        try:
            holder = json.loads(value)
            return {"token": str(holder["token"]), "expires": float(holder["expires"])}
        except (ValueError, KeyError, TypeError):  # not a lock this code wrote: treat it as expired
            return {"token": "", "expires": 0.0}

    def _delete_lock(self) -> None:
        try:
            self._ssm.delete_parameter(Name=self._lock)
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                raise
