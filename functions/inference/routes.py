"""Every route the inference function serves, as the front door must declare it: one list, read by infra.

Paths are written as API Gateway writes them (no leading slash, `{parameter}`). `writes` marks a route that
stores something (its own throttle, and under IAM auth only api.writers may call it).
tests/functions/inference/test_routes.py checks the list against the resolver's own routes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServedRoute:
    method: str
    path: str
    writes: bool = False


SERVED_ROUTES: tuple[ServedRoute, ...] = (
    ServedRoute("POST", "predict"),
    ServedRoute("GET", "model"),
    ServedRoute("GET", "health"),
    ServedRoute("GET", "openapi.json"),
    ServedRoute("GET", "docs"),
    ServedRoute("POST", "predict/async", writes=True),
    ServedRoute("GET", "predict/async/{job_id}"),
    ServedRoute("POST", "feedback", writes=True),
    ServedRoute("GET", "v2/health/live"),
    ServedRoute("GET", "v2/health/ready"),
    ServedRoute("GET", "v2/models/{model_name}"),
    ServedRoute("POST", "v2/models/{model_name}/infer"),
    ServedRoute("GET", "v2/models/{model_name}/ready"),
    ServedRoute("GET", "v2/models/{model_name}/versions/{version}"),
    ServedRoute("GET", "v2/models/{model_name}/versions/{version}/ready"),
    ServedRoute("POST", "v2/models/{model_name}/versions/{version}/infer"),
)
