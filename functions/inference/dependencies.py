"""What the inference function's routes are given: one object built once per cold start, and the configuration.

The entry builds `RouteDependencies` at init and hands it to each route module's `router(...)`.
The function's configuration reaches the routes with each request instead, in the routing
context (`app.append_context`, which Powertools clears after every request), so that routes
read the configuration the entry holds at the time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.adapters import factory
from functions.core.feedback import FeedbackStore
from functions.core.jobs import JobQueue, JobStore
from functions.inference.capture import Capture
from functions.inference.config import InferenceConfig
from functions.inference.live_model import LiveModel
from functions.inference.schemas import PredictRequest, predict_request_model


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class RouteDependencies:
    """The live model, telemetry, capture, the deployment's /predict body model and the stores the routes use."""

    logger: Logger
    metrics: Metrics
    live_model: LiveModel
    capture: Capture
    request_model: type[PredictRequest]  # the /predict body with this deployment's row limit
    jobs: JobStore
    queue: JobQueue | None  # None: /predict/async answers 503
    feedback: FeedbackStore
    clock: Callable[[], datetime] = _now


def route_dependencies(
    config: InferenceConfig, *, logger: Logger, metrics: Metrics, live_model: LiveModel, capture: Capture
) -> RouteDependencies:
    """The routes' dependencies, with the body model and the stores the function's configuration names."""
    return RouteDependencies(
        logger=logger,
        metrics=metrics,
        live_model=live_model,
        capture=capture,
        request_model=predict_request_model(config.max_instances),
        jobs=factory.job_store(config.artifacts_bucket),
        queue=factory.job_queue(config.requests_queue_url) if config.requests_queue_url else None,
        feedback=factory.monitoring_store(config.artifacts_bucket),
    )


def request_config(router: Router) -> InferenceConfig:
    """The function's configuration, as the entry put it in this request's routing context."""
    return cast(InferenceConfig, router.context["config"])
