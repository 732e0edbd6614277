"""The interface of what the local stack runs besides moto and the gateway: one service per component.

The local stack stands in for AWS's wiring (schedules, event sources, state
machine executions) with small background services: a class with `start(context)`
that creates its moto resources and starts its loops, and `stop()` that ends them.
The decisions they call are the same code the Lambda functions run. The list of
services is `slipway.local.stack.local_services`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stage.names import ResourceNames
from stage.settings import StageSettings


@dataclass(frozen=True)
class LocalContext:
    """What a local service needs to know about the running stack."""

    settings: StageSettings
    names: ResourceNames
    aws_endpoint: str
    log_dir: Path


class LocalService(Protocol):
    """A component's stand-in for AWS wiring in the local stack."""

    def start(self, context: LocalContext) -> None: ...

    def stop(self) -> None: ...
