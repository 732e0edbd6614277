"""The model a container serves: loaded once, re-pointed when the registry moves.

The live pointer is re-read at most every `refresh_seconds`; a bundle is
loaded only when the pointer names a new version. When that version cannot
be loaded (missing, corrupt, wrong hash, a graph ONNX Runtime rejects, S3
unreachable), the last good model keeps answering: a warm container keeps the
one it has, a cold one loads the version the pointer replaced. Either way the
serving state says why it is stale (/health, a metric, an alarm) and the load
is retried at every refresh. Plan B answers only when no model could be loaded.

When the pointer names a rollout, the candidate is loaded beside the live model and
kept while the rollout names it. A candidate that cannot be loaded leaves the live
model alone: the serving state says why (/health), and the load is retried at every
refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from functions.adapters import factory
from functions.core.errors import BundleError, ModelUnavailable
from functions.core.manifest import FallbackAnswer
from functions.core.predictor import (
    REASON_MODEL_UNAVAILABLE,
    REASON_NO_LIVE_MODEL,
    REASON_REGISTRY_UNREACHABLE,
    Predictor,
)
from functions.core.registry import LivePointer, ModelStore, PointerStore
from functions.core.rollout import Rollout
from functions.core.telemetry import service_logger

# Why a version could not be loaded, as /health and /model say it (the exception's text goes to the log only).
UNUSABLE_BUNDLE = "unusable_bundle"
BUNDLE_UNREACHABLE = "bundle_unreachable"


@dataclass(frozen=True)
class Candidate:
    """The rollout's candidate, loaded: its predictor and how it takes part."""

    predictor: Predictor
    rollout: Rollout


@dataclass(frozen=True)
class Serving:
    """What answers right now: a predictor, or the reason plan B must; and the rollout's candidate, if any."""

    predictor: Predictor | None
    version: str | None
    fallback: FallbackAnswer | None
    reason: str | None
    # Set while the last good version answers because the pointer's cannot be loaded.
    stale: str | None = None
    candidate: Candidate | None = None
    # Why the rollout's candidate is not loaded (None when there is no rollout, or it is).
    candidate_problem: str | None = None


class LiveModel:
    """Keeps the live version loaded in this container."""

    def __init__(
        self,
        *,
        store: ModelStore,
        pointer: PointerStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        load_candidate: bool = False,
    ) -> None:
        self._load_candidate = load_candidate
        self._store = store
        self._pointer_store = pointer
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._checked_at: float | None = None
        self._pointer: LivePointer | None = None  # the last pointer read, None until one was
        self._serving = Serving(None, None, None, REASON_NO_LIVE_MODEL)
        self._candidate: Predictor | None = None
        self._pointer_read_ms = 0.0
        self._bundle_read_ms = 0.0

    def current(self) -> Serving:
        """The serving state, refreshed from the registry when the interval has passed."""
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            self._refresh()
        return self._serving

    def expire(self) -> None:
        """Re-read the pointer at the next `current()`, however recent the last read (a restored snapshot's)."""
        self._checked_at = None

    def rollout(self) -> Rollout | None:
        """The rollout the last pointer read names (its candidate may or may not be loaded)."""
        return self._pointer.rollout if self._pointer is not None else None

    def _refresh(self) -> None:
        self._serving = self._live()
        if self._pointer is not None:
            self._serving = self._with_candidate(self._serving, self._pointer.rollout)

    def _with_candidate(self, serving: Serving, rollout: Rollout | None) -> Serving:
        """`serving` with the rollout's candidate loaded beside it (or why it is not)."""
        if rollout is None or serving.predictor is None or not self._load_candidate:
            self._candidate = None
            return serving
        if self._candidate is None or self._candidate.version != rollout.candidate:
            predictor, failure = self._load(rollout.candidate, rollout.digest)
            if predictor is None:
                problem = f"candidate {rollout.candidate} cannot be loaded ({failure}); live answers alone"
                service_logger(__name__).error(problem, extra={"candidate": rollout.candidate, "error": failure})
                self._candidate = None
                return replace(serving, candidate_problem=problem)
            service_logger(__name__).info(
                "candidate loaded", extra={"candidate": rollout.candidate, "mode": rollout.mode}
            )
            self._candidate = predictor
        return replace(serving, candidate=Candidate(self._candidate, rollout))

    def _live(self) -> Serving:
        """The live side of the serving state, from a fresh read of the pointer (or the last one)."""
        started = time.perf_counter()
        try:
            pointer = self._pointer_store.read()
            self._pointer_read_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # registry, network or parse errors alike: keep serving what we have
            if self._pointer is None:
                service_logger(__name__).error(
                    "live pointer unreadable at start; plan B answers", extra={"error": str(exc)}
                )
                return Serving(None, None, None, REASON_REGISTRY_UNREACHABLE)
            service_logger(__name__).warning("live pointer unreadable; keeping the last one", extra={"error": str(exc)})
            pointer = self._pointer
        self._pointer = pointer
        loaded = self._serving.predictor
        if loaded is not None and pointer.version == loaded.version:
            return Serving(loaded, loaded.version, pointer.fallback, None)
        if pointer.version is None:
            return Serving(None, None, pointer.fallback, REASON_NO_LIVE_MODEL)
        if self._candidate is not None and self._candidate.version == pointer.version:
            service_logger(__name__).info("candidate promoted: it answers now", extra={"version": pointer.version})
            return Serving(self._candidate, pointer.version, pointer.fallback, None)
        predictor, failure = self._load(pointer.version, pointer.digest)
        if predictor is not None:
            service_logger(__name__).info(
                "live model loaded", extra={"version": pointer.version, "load_ms": self.load_ms(predictor)}
            )
            return Serving(predictor, pointer.version, pointer.fallback, None)
        # The pointer's version cannot serve: the model this container has, else the one the pointer replaced.
        last_good = loaded
        if last_good is None and pointer.previous is not None:
            last_good, _ = self._load(pointer.previous)
        if last_good is None:
            service_logger(__name__).error(
                "no loadable model; plan B answers", extra={"version": pointer.version, "error": failure}
            )
            return Serving(None, pointer.version, pointer.fallback, REASON_MODEL_UNAVAILABLE)
        stale = f"live version {pointer.version} cannot be loaded ({failure}); the last good version answers"
        service_logger(__name__).error(
            stale, extra={"version": pointer.version, "serving": last_good.version, "error": failure}
        )
        return Serving(last_good, last_good.version, last_good.manifest.fallback, None, stale=stale)

    def load_ms(self, predictor: Predictor) -> dict[str, float]:
        """How long the last load took, step by step in ms: the pointer read, the bundle read, then
        `predictor`'s own steps (hash check, session, batch-invariance probe)."""
        return {
            "pointer_read": round(self._pointer_read_ms, 2),
            "bundle_read": round(self._bundle_read_ms, 2),
            **{step: round(ms, 2) for step, ms in predictor.load_ms.items()},
        }

    def _load(self, version: str, digest: str | None = None) -> tuple[Predictor | None, str]:
        """The predictor of `version`, or None and a reason code (the exception itself is logged, never answered:
        its text may name buckets, keys and ARNs)."""
        try:
            started = time.perf_counter()
            manifest, onnx_bytes = self._store.get_bundle(version)
            self._bundle_read_ms = (time.perf_counter() - started) * 1000
            if manifest.version != version:
                raise BundleError(f"manifest names {manifest.version}, the registry {version}")
            return Predictor(manifest, onnx_bytes, digest=digest), ""
        except Exception as exc:  # S3 unreachable and the like are retried at the next refresh
            code = UNUSABLE_BUNDLE if isinstance(exc, KeyError | BundleError | ModelUnavailable) else BUNDLE_UNREACHABLE
            service_logger(__name__).error(
                "bundle not loaded", extra={"version": version, "reason": code, "error": str(exc)}
            )
            return None, code


class ModelSource(Protocol):
    """The part of a function's configuration that says where its live model is (InferenceConfig, WorkerConfig)."""

    @property
    def artifacts_bucket(self) -> str: ...
    @property
    def live_pointer_parameter(self) -> str: ...
    @property
    def pointer_refresh_seconds(self) -> float: ...


def live_model_of(config: ModelSource, *, load_candidate: bool = False) -> LiveModel:
    """The live model of a function, from the bundles and the pointer its configuration names.

    With `load_candidate` (the /predict function) a rollout's candidate is loaded beside it; the
    async worker and batch scoring answer with the live model alone and leave it out.
    """
    return LiveModel(
        store=factory.model_store(config.artifacts_bucket),
        pointer=factory.pointer_store(config.live_pointer_parameter),
        refresh_seconds=config.pointer_refresh_seconds,
        load_candidate=load_candidate,
    )
