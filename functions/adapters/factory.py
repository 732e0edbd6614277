"""One cached place that builds the AWS clients and the adapters over them.

Clients are botocore's (boto3 adds only resources and S3's transfer manager, which
nothing here uses, and importing it costs a cold start about 40 ms). Each is made
at its first call, not when its adapter is built, so a cold start pays only for
the clients that its first request uses. They honour the standard
`AWS_ENDPOINT_URL` variable, which is how the local stack points every function
and command at moto.
"""

from __future__ import annotations

import gzip
import os
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.loaders
import botocore.session
import orjson
from botocore.config import Config

from functions.adapters.batch_store import S3BatchStore
from functions.adapters.events import EventBridgePublisher
from functions.adapters.job_queue import SqsJobQueue
from functions.adapters.job_store import S3JobStore
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.adapters.monitoring_store import S3MonitoringStore
from functions.core.registry import Registry

if TYPE_CHECKING:
    from functions.adapters.lake_objects import S3Source

# Fail fast and let plan B answer, rather than hold a request on a slow dependency.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})


# Keyword arguments every client gets (set by the CLI, never by a function; see `use_defaults`).
_DEFAULTS: dict[str, str] = {}


def use_defaults(**client_arguments: str) -> None:
    """Give every client made from now on these boto3 arguments (region_name, credentials)."""
    _DEFAULTS.clear()
    _DEFAULTS.update(client_arguments)
    reset_clients()


@cache
def client(service: str) -> Any:
    """A client of `service`, created once per process (until `reset_clients`)."""
    return _session().create_client(service, config=_CLIENT_CONFIG, **_DEFAULTS)


@cache
def _session() -> botocore.session.Session:
    session = botocore.session.get_session()
    if session.get_config_variable("data_path") is None:  # else botocore's loader, for its extra model folders
        session.register_component("data_loader", _loader())
    return session


@cache
def _loader() -> botocore.loaders.Loader:
    """botocore's model files, parsed once per process and kept across `reset_clients`: a new session
    would otherwise parse them again, about 40 ms of the first request after a SnapStart restore."""
    return botocore.loaders.Loader(file_loader=_OrjsonFileLoader())


class _OrjsonFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's model files (endpoints, rules, each service's API) parsed by orjson.

    botocore parses them with the standard library into OrderedDicts: about 60 % of the time
    its first two clients take to make, 30 ms of a cold start (`make bench`, cold start).
    """

    def load_file(self, file_path: str) -> Any:
        for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + suffix
            if os.path.isfile(path):
                with opener(path, "rb") as file:
                    return orjson.loads(file.read())
        return None


class _OnFirstUse:
    """Stands for `client(service)`, which it asks for at each call: the client is made when first used."""

    __slots__ = ("_service",)

    def __init__(self, service: str) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(client(self._service), name)


def reset_clients() -> None:
    """Make every client afresh at its next use (new connections and credentials); adapters keep working.

    The botocore session goes too: it resolves credentials once and keeps them. The parsed model
    files stay (`_loader`): they are the same for every session.
    """
    client.cache_clear()
    _session.cache_clear()


def model_store(bucket: str) -> S3ModelStore:
    return S3ModelStore(_OnFirstUse("s3"), bucket)


def pointer_store(parameter: str) -> SsmPointerStore:
    return SsmPointerStore(_OnFirstUse("ssm"), parameter)


def registry(bucket: str, parameter: str) -> Registry:
    return Registry(model_store(bucket), pointer_store(parameter))


def job_store(bucket: str) -> S3JobStore:
    return S3JobStore(_OnFirstUse("s3"), bucket)


def job_queue(queue_url: str) -> SqsJobQueue:
    return SqsJobQueue(_OnFirstUse("sqs"), queue_url)


def monitoring_store(bucket: str) -> S3MonitoringStore:
    return S3MonitoringStore(_OnFirstUse("s3"), bucket)


def event_publisher(source: str, bus: str = "default") -> EventBridgePublisher:
    return EventBridgePublisher(_OnFirstUse("events"), source=source, bus=bus)


def batch_store(bucket: str) -> S3BatchStore:
    return S3BatchStore(_OnFirstUse("s3"), bucket)


def lake_source() -> S3Source:
    """The user's lake (data.uris, data.labels), read object by object."""
    from functions.adapters.lake_objects import S3Source  # pyarrow: imported only by the functions that read a lake

    return S3Source(_OnFirstUse("s3"))
