"""The routes every front door serves, each proxied to the inference function's `live` alias."""

from __future__ import annotations

import re
from dataclasses import dataclass

from functions.inference.routes import SERVED_ROUTES


@dataclass(frozen=True)
class Route:
    """One API route, proxied to the inference function's `live` alias."""

    method: str
    path: str
    writes: bool = False  # stores what the caller sends: its own principals (api.writers) and throttle

    @property
    def execute_api(self) -> str:
        """The route as a resource of the API's own policy (any stage)."""
        return f"execute-api:/*/{self.method}/{re.sub(r'{[^}]+}', '*', self.path)}"


# Every route the API serves: the inference function's own list.
ROUTES: tuple[Route, ...] = tuple(Route(route.method, route.path, route.writes) for route in SERVED_ROUTES)
WRITE_ROUTES = tuple(route for route in ROUTES if route.writes)
