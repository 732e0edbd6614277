"""A candidate beside the live version: the pointer's rollout, and which requests the candidate takes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from functions.core.errors import RegistryError
from functions.core.registry import Registry
from functions.core.rollout import Rollout, bucket, candidate_takes
from tests.functions.core.conftest import T0


def _rollout(percent: float, mode: str = "canary") -> Rollout:
    return Rollout(candidate="v2", mode=mode, percent=percent, started_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.unit
def test_a_key_lands_in_the_same_bucket_every_time_and_keys_spread_evenly() -> None:
    assert bucket("caller-7") == bucket("caller-7")
    buckets = [bucket(f"caller-{i}") for i in range(10_000)]
    assert all(0 <= b < 100 for b in buckets)
    share = sum(b < 30 for b in buckets) / len(buckets)
    assert 0.28 < share < 0.32


@pytest.mark.unit
def test_the_candidate_takes_its_share_of_draws_and_sticky_keys_keep_their_version() -> None:
    rollout = _rollout(30)
    draws = [i / 1000 for i in range(1000)]
    assert sum(candidate_takes(rollout, key=None, draw=d) for d in draws) == 300
    sticky = [candidate_takes(rollout, key="caller-7", draw=d) for d in draws]
    assert len(set(sticky)) == 1, "a key ignores the draw"
    assert candidate_takes(_rollout(100), key=None, draw=0.999)


@pytest.mark.unit
@pytest.mark.parametrize("percent", [0, -5, 100.5])
def test_a_share_outside_0_to_100_is_refused(percent: float) -> None:
    with pytest.raises(ValidationError, match="percent"):
        _rollout(percent)


@pytest.mark.handler
def test_a_rollout_changes_only_the_pointer_s_rollout(registry: Registry, three: list[str]) -> None:
    a, b, _ = three
    registry.promote(a, "first", now=T0)
    before = registry.live()
    pointer = registry.start_rollout(b, "shadow", 100, "retrain run 7", now=T0.replace(hour=13))
    manifest, graph = registry.store.get_bundle(b)
    assert pointer.rollout == Rollout(candidate=b, mode="shadow", percent=100, started_at=T0.replace(hour=13),
                                      reason="retrain run 7", digest=manifest.content_digest(graph))  # fmt: skip
    assert pointer.model_copy(update={"rollout": None}) == before, "live version, history and window unchanged"
    assert registry.start_rollout(b, "canary", 30, "bake passed").rollout.mode == "canary"  # type: ignore[union-attr]
    ended = registry.end_rollout()
    assert ended.rollout is None and ended.version == a
    assert registry.end_rollout() == ended, "ending no rollout writes nothing new"


@pytest.mark.handler
def test_promoting_or_rolling_back_ends_the_rollout(registry: Registry, three: list[str]) -> None:
    a, b, c = three
    registry.promote(a, "first", now=T0)
    registry.start_rollout(b, "canary", 10, "try b")
    promoted = registry.promote(b, "rollout passed")
    assert (promoted.version, promoted.previous, promoted.rollout) == (b, a, None)
    registry.start_rollout(c, "shadow", 50, "try c")
    rolled = registry.rollback("alarm")
    assert (rolled.version, rolled.rollout) == (a, None)
    registry.start_rollout(c, "shadow", 50, "try c again")
    assert registry.promote(a, "keep a").rollout is None, "promoting the live version ends the rollout"


@pytest.mark.handler
def test_a_rollout_needs_a_registered_version_other_than_live(registry: Registry, three: list[str]) -> None:
    a, b, _ = three
    with pytest.raises(RegistryError, match="no live version"):
        registry.start_rollout(b, "shadow", 100, "x")
    registry.promote(a, "first")
    with pytest.raises(RegistryError, match="is the live version"):
        registry.start_rollout(a, "canary", 10, "x")
    with pytest.raises(RegistryError, match="unknown model version"):
        registry.start_rollout("nope", "canary", 10, "x")
    assert registry.live().rollout is None
