"""The local stack: moto on loopback holding the stage's resources, the example model live, the gateway.

The bucket and the live-pointer parameter carry the names the CDK app gives
them (same settings, same `ResourceNames`), and the handler runs with the
environment the CDK app gives the function, so local and AWS differ only in
wiring.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from moto.server import ThreadedMotoServer

from functions.adapters import factory
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.data_source import DataSource
from functions.core.registry import LivePointer
from functions.retrain.steps import train_current
from functions.training.train import load_recipe
from slipway.local.async_jobs import AsyncJobsService
from slipway.local.batch_scoring import BatchScoringService
from slipway.local.gateway import Gateway
from slipway.local.lake import seed_lake
from slipway.local.lambda_runtime import cold_start
from slipway.local.monitoring import LocalMonitoring
from slipway.local.retrain_service import RetrainService
from slipway.local.services import LocalContext, LocalService
from stage.environments import inference_environment
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import PROJECT_ROOT, StageSettings, load_settings, with_overrides

DEFAULT_AWS_PORT = 5050
ServiceT = TypeVar("ServiceT")
STATE_DIR = PROJECT_ROOT / ".slipway"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


def local_services() -> list[LocalService]:
    """The services of every component, in start order (stopped in reverse); a new component adds its own."""
    return [AsyncJobsService(), BatchScoringService(), RetrainService(), LocalMonitoring()]


@dataclass
class LocalStack:
    """Starts, seeds and stops the whole system on one machine."""

    stage: str = "dev"
    host: str = "127.0.0.1"
    port: int = 8080
    aws_port: int = DEFAULT_AWS_PORT
    log_dir: Path = STATE_DIR / "logs"
    # How often the serving function re-reads the live pointer (default: the stage's setting).
    pointer_refresh_seconds: int | None = None
    # Settings this stack changes from the stage's, nested as cdk.json writes them: {"recipe":
    # "model.examples.penguins"} trains, serves and retrains the second example.
    overrides: dict[str, Any] = field(default_factory=dict)
    # Train from a small lake in moto (the recipe's data as daily Parquet partitions, slipway/local/lake.py)
    # instead of load_data(): the stage's data source becomes that lake. Without it the local stack trains
    # from load_data() whatever the stage declares, since moto holds none of the stage's own buckets.
    lake: bool = False
    live_version: str | None = None
    settings: StageSettings | None = None  # as started: the stage's, with the overrides
    _moto: ThreadedMotoServer | None = field(default=None, repr=False)
    _gateway: Gateway | None = field(default=None, repr=False)
    _function_log: IO[str] | None = field(default=None, repr=False)
    _service_logger: logging.Logger | None = field(default=None, repr=False)
    _services: list[LocalService] = field(default_factory=list, repr=False)

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def url(self) -> str:
        assert self._gateway is not None, "the stack is not started"
        return self._gateway.url

    @property
    def function_log_path(self) -> Path:
        return self.log_dir / "inference.log"

    def service(self, kind: type[ServiceT]) -> ServiceT:
        """The running service of class `kind` (to drive it at once rather than on its schedule)."""
        for service in self._services:
            if isinstance(service, kind):
                return service
        raise LookupError(f"no {kind.__name__} is running: start the stack first")

    def start(self, access_log: Any = None) -> LocalStack:
        """Start moto, create the stage's resources, train and promote the example model, serve."""
        settings = with_overrides(load_settings(self.stage), self.overrides)
        if self.pointer_refresh_seconds is not None:
            inference = settings.inference.model_copy(update={"pointer_refresh_seconds": self.pointer_refresh_seconds})
            settings = settings.model_copy(update={"inference": inference})
        names = ResourceNames.of(settings, account=LOCAL_ACCOUNT, region=settings.region)
        for port in (self.port, self.aws_port):
            _check_free(self.host, port)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        self._moto.start()
        reset_moto(self.aws_endpoint)
        os.environ.update(AWS_ENDPOINT_URL=self.aws_endpoint, AWS_DEFAULT_REGION=settings.region, **LOCAL_CREDENTIALS)
        os.environ.pop("AWS_PROFILE", None)
        factory.reset_clients()
        self._create_resources(names)
        if self.lake:
            settings = settings.model_copy(
                update={"data": seed_lake(factory.client("s3"), names, load_recipe(settings.recipe))}
            )
        elif settings.data.kind != "recipe":
            # moto holds none of the buckets (or Athena tables) the stage declares: train from load_data().
            settings = settings.model_copy(update={"data": DataSource()})
        self.settings = settings
        self.live_version = self._seed_model(names, settings.data, settings.recipe)
        context = LocalContext(settings=settings, names=names, aws_endpoint=self.aws_endpoint, log_dir=self.log_dir)
        for service in local_services():
            service.start(context)
            self._services.append(service)
        os.environ.update(inference_environment(settings, names), POWERTOOLS_TRACE_DISABLED="1")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._function_log = self.function_log_path.open("a", encoding="utf-8")
        # The handler logs while it initialises, through a Powertools Logger that binds stdout at its
        # first import and is reused (by service name) on a re-import: face both towards the log file.
        self._service_logger = logging.getLogger(names.inference_service)
        _face(self._service_logger, self._function_log)
        with contextlib.redirect_stdout(self._function_log):
            module = cold_start("functions.inference.handler")
        handler = module.lambda_handler
        self._gateway = Gateway(
            handler,
            host=self.host,
            port=self.port,
            function_log=self._function_log,
            access_log=access_log,
            front_door=settings.api.type,
        )
        self._gateway.start()
        return self

    def stop(self) -> None:
        while self._services:
            self._services.pop().stop()
        os.environ.pop("RECIPE", None)  # the retrain functions' recipe (LocalRetrain sets their environment)
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._function_log is not None:
            # A later stack in the same process reuses the logger: leave it on stdout, not a closed file.
            if self._service_logger is not None:
                _face(self._service_logger, sys.stdout)
            self._function_log.close()
            self._function_log = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _create_resources(names: ResourceNames) -> None:
        s3 = factory.client("s3")
        s3.create_bucket(Bucket=names.artifacts_bucket)
        s3.put_bucket_versioning(Bucket=names.artifacts_bucket, VersioningConfiguration={"Status": "Enabled"})
        factory.client("ssm").put_parameter(
            Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
        )

    @staticmethod
    def _seed_model(names: ResourceNames, source: DataSource, recipe: str) -> str:
        """Train the recipe on the stage's data as `slipway train` does (the table and its lineage), and promote it."""
        bucket = names.artifacts_bucket
        bundle = train_current(
            S3RetrainStore(factory.client("s3"), bucket), S3Source(factory.client("s3")), source, load_recipe(recipe),
            artifacts_bucket=bucket, code_revision=None,
        )  # fmt: skip
        registry = factory.registry(names.artifacts_bucket, names.live_pointer_parameter)
        registry.register(bundle.manifest, bundle.onnx_bytes)
        registry.promote(bundle.version, "local stack: example model")
        return bundle.version


def reset_moto(endpoint: str) -> None:
    """Start from empty state: moto keeps its backends per process, across server instances."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _face(logger: logging.Logger, stream: IO[str]) -> None:
    """Point the logger's stream handlers at ``stream``.

    Assigned, not ``setStream``: that flushes the old stream, which may be closed.
    """
    for existing in logger.handlers:
        if isinstance(existing, logging.StreamHandler):
            existing.stream = stream


def _check_free(host: str, port: int) -> None:
    """Fail at once with the port's number, rather than hang in a server thread that cannot bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"{host}:{port} is already in use") from exc
