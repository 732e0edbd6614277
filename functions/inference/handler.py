"""The inference Lambda behind the stage's front door (API Gateway REST or HTTP API, or a function URL):
/predict, /predict/async, /feedback, /model, /health, /openapi.json and the Open Inference Protocol's /v2 routes.

Built once per cold start: configuration, Powertools, the live model and the resolver with
its routers (one module per group of routes, and one for every error's answer). Each request
is admitted (counted, refused or its body made JSON text) and then routed.
"""

# ruff: noqa: E402  (the collector is paused before the first import)
from __future__ import annotations

import gc

# No collection while the container initialises: imports and the model load allocate hundreds of
# thousands of objects that all live as long as the container, so scanning them is wasted cold-start
# time. Frozen and resumed at the end of this module.
gc.disable()

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.core.errors import InvalidRequest
from functions.inference import (
    admission,
    async_routes,
    error_handlers,
    feedback_routes,
    model_routes,
    openapi_routes,
    predict_routes,
    snap_start,
    v2_routes,
)
from functions.inference.capture import Capture
from functions.inference.config import InferenceConfig
from functions.inference.dependencies import route_dependencies
from functions.inference.front_door import FRONT_DOORS
from functions.inference.live_model import live_model_of
from functions.inference.schemas import dump_json, parse_json

# /model, /health and /openapi.json publish no metric; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

config = InferenceConfig.from_environ()
front_door = FRONT_DOORS[config.front_door]  # the resolver and event data class of the stage's api.type
logger = Logger()
tracer = Tracer()
metrics = Metrics()
live_model = live_model_of(config, load_candidate=True)
capture = Capture(sampling_rate=config.capture_sampling_rate)
deps = route_dependencies(config, logger=logger, metrics=metrics, live_model=live_model, capture=capture)

# No resolver-wide OpenAPI validation: it inspects every parameter kind of a route on every request
# and its middlewares are imported at init. Bodies are validated by their pydantic models
# (validated_body); the OpenAPI document is built from the routes' signatures on demand.
app = front_door.resolver(json_body_deserializer=parse_json, serializer=dump_json)
app.include_router(async_routes.router(deps))
app.include_router(feedback_routes.router(deps))
app.include_router(predict_routes.router(deps))
app.include_router(v2_routes.router(deps))
app.include_router(model_routes.router(live_model))
app.include_router(openapi_routes.router(app, live_model, csv_paths=admission.ROW_PATHS))
app.include_router(error_handlers.router(deps))


@logger.inject_lambda_context(correlation_id_path=front_door.correlation_id_path)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = front_door.event(event)
    try:
        event = admission.admit(request, app, deps, max_body_bytes=config.max_body_bytes)
    except InvalidRequest as exc:
        return error_handlers.refusal(request, exc, deps)
    app.append_context(config=config)  # read by the routes (Powertools clears the context after each request)
    return app.resolve(event, context)


# Load the live model during init (boosted CPU, and done before traffic under provisioned
# concurrency, or before the snapshot under SnapStart), then exempt everything built so far
# from garbage collection, so that the objects a 1,000-row request allocates never trigger
# a scan of the whole init-time heap.
live_model.current()
snap_start.register(live_model)
gc.freeze()
gc.enable()
