"""CDK constructs of Slipway: one per component, wired by `SlipwayStack`."""

from __future__ import annotations

from infra.app import build_app
from infra.stack import SlipwayStack

__all__ = ["SlipwayStack", "build_app"]
