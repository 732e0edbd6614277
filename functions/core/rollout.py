"""A candidate version beside the live one: shadow (scored, never answering) or canary (answering a share). AWS-free.

The rollout is part of the live pointer (`LivePointer.rollout`), so one read tells a
container both versions and one write starts, changes or ends a rollout: the model is
data, not code, and nothing is redeployed. Which requests the candidate takes is
decided here, per request: a caller's key (the `X-Slipway-Key` header) always lands in
the same bucket, so a caller who sends one stays on one version while the share holds;
without a key each request is drawn at random.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RolloutMode = Literal["shadow", "canary"]
# The request header that keeps a caller on one version during a canary.
STICKY_HEADER = "X-Slipway-Key"
# Roles of the versions a container serves: the metrics' `model_role` dimension (bounded: two values).
LIVE, CANDIDATE = "live", "candidate"


class Rollout(BaseModel):
    """A candidate in shadow or canary: which version, how, for what share, since when and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidate: str = Field(min_length=1)
    mode: RolloutMode
    percent: float = Field(
        gt=0, le=100, description="Canary: share of requests the candidate answers. Shadow: share it also scores."
    )
    started_at: datetime
    reason: str = ""


def bucket(key: str) -> float:
    """Where a caller's key falls in [0, 100): the same key, the same bucket, in every container."""
    digest = hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def candidate_takes(rollout: Rollout, *, key: str | None, draw: float) -> bool:
    """Whether this request goes to the candidate (canary: answers it; shadow: also scores it).

    `draw` is a uniform number in [0, 1) for a request without a key.
    """
    position = bucket(key) if key else draw * 100
    return position < rollout.percent
