"""One cached place that builds the boto3 clients and the adapters over them.

Clients honour the standard `AWS_ENDPOINT_URL` variable, which is how the
local stack points every function and command at moto.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from functions.adapters.batch_store import S3BatchStore
from functions.adapters.events import EventBridgePublisher
from functions.adapters.job_queue import SqsJobQueue
from functions.adapters.job_store import S3JobStore
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.adapters.monitoring_store import S3MonitoringStore
from functions.core.registry import Registry

# Fail fast and let plan B answer, rather than hold a request on a slow dependency.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})


# Keyword arguments every client gets (set by the CLI, never by a function; see `use_defaults`).
_DEFAULTS: dict[str, str] = {}


def use_defaults(**client_arguments: str) -> None:
    """Give every client made from now on these boto3 arguments (region_name, credentials)."""
    _DEFAULTS.clear()
    _DEFAULTS.update(client_arguments)
    client.cache_clear()


@cache
def client(service: str) -> Any:
    """A boto3 client, created once per process."""
    return boto3.client(service, config=_CLIENT_CONFIG, **_DEFAULTS)  # type: ignore[call-overload]


def model_store(bucket: str) -> S3ModelStore:
    return S3ModelStore(client("s3"), bucket)


def pointer_store(parameter: str) -> SsmPointerStore:
    return SsmPointerStore(client("ssm"), parameter)


def registry(bucket: str, parameter: str) -> Registry:
    return Registry(model_store(bucket), pointer_store(parameter))


def job_store(bucket: str) -> S3JobStore:
    return S3JobStore(client("s3"), bucket)


def job_queue(queue_url: str) -> SqsJobQueue:
    return SqsJobQueue(client("sqs"), queue_url)


def monitoring_store(bucket: str) -> S3MonitoringStore:
    return S3MonitoringStore(client("s3"), bucket)


def event_publisher(source: str, bus: str = "default") -> EventBridgePublisher:
    return EventBridgePublisher(client("events"), source=source, bus=bus)


def batch_store(bucket: str) -> S3BatchStore:
    return S3BatchStore(client("s3"), bucket)
