"""GET /model and GET /health: what the container serves, and whether it is ready."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.core.errors import ServiceUnavailable
from functions.inference.dependencies import request_config
from functions.inference.live_model import LiveModel, Serving
from functions.inference.schemas import CandidateInfo, Health, ModelInfo, route_responses
from functions.inference.v2_routes import model_name_of


def router(live_model: LiveModel) -> APIGatewayRouter:
    """GET /model and GET /health, about `live_model` and its rollout's candidate."""
    model_router = APIGatewayRouter()

    @model_router.get(
        "/model",
        summary="The live model: version, task, classes, feature spec, holdout metrics",
        responses=route_responses(200, "The live model", ModelInfo, 503),
    )
    def model_info() -> ModelInfo:
        serving = live_model.current()
        if serving.predictor is None:
            raise ServiceUnavailable(f"no live model is loaded ({serving.reason})")
        manifest = serving.predictor.manifest
        return ModelInfo(
            name=model_name_of(manifest, request_config(model_router).model_name),
            version=manifest.version,
            task=manifest.task,
            classes=list(manifest.classes) if manifest.classes else None,
            metric=manifest.metric,
            metrics=manifest.metrics,
            parity=manifest.parity,
            feature_spec=manifest.feature_spec,
            candidate=_candidate_info(live_model, serving),
        )

    @model_router.get(
        "/health",
        summary="ready, or degraded with the reason",
        responses=route_responses(200, "ready or degraded", Health),
    )
    def health() -> Health:
        serving = live_model.current()
        if serving.predictor is None:
            return Health(status="degraded", model_version=serving.version, reason=serving.reason)
        candidate = _candidate_info(live_model, serving)
        if serving.stale is not None:
            return Health(status="degraded", model_version=serving.version, reason=serving.stale, candidate=candidate)
        return Health(status="ready", model_version=serving.version, reason=None, candidate=candidate)

    return model_router


def _candidate_info(live_model: LiveModel, serving: Serving) -> CandidateInfo | None:
    rollout = live_model.rollout()
    if rollout is None:
        return None
    loaded = serving.candidate.predictor.manifest if serving.candidate is not None else None
    return CandidateInfo(
        version=rollout.candidate,
        mode=rollout.mode,
        percent=rollout.percent,
        started_at=rollout.started_at,
        loaded=loaded is not None,
        reason=serving.candidate_problem,
        metric=loaded.metric if loaded else None,
        metrics=loaded.metrics if loaded else None,
    )
