"""The routes every front door serves, each proxied to the inference function's `live` alias."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One API route, proxied to the inference function's `live` alias."""

    method: str
    path: str
    writes: bool = False  # stores what the caller sends: its own principals (api.writers) and throttle

    @property
    def execute_api(self) -> str:
        """The route as a resource of the API's own policy (any stage)."""
        return f"execute-api:/*/{self.method}/{self.path.replace('{job_id}', '*')}"


# Every route the API serves.
ROUTES: tuple[Route, ...] = (
    Route("POST", "predict"),
    Route("GET", "model"),
    Route("GET", "health"),
    Route("GET", "openapi.json"),
    Route("GET", "docs"),
    Route("POST", "predict/async", writes=True),
    Route("GET", "predict/async/{job_id}"),
    Route("POST", "feedback", writes=True),
)
WRITE_ROUTES = tuple(route for route in ROUTES if route.writes)
