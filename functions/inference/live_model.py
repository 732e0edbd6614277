"""The model a container serves: loaded once, re-pointed when the registry moves.

The live pointer is re-read at most every `refresh_seconds`; a bundle is
loaded only when the pointer names a new version. When that version cannot
be loaded (missing, corrupt, wrong hash, a graph ONNX Runtime rejects, S3
unreachable), the last good model keeps answering: a warm container keeps the
one it has, a cold one loads the version the pointer replaced. Either way the
serving state says why it is stale (/health, a metric, an alarm) and the load
is retried at every refresh. Plan B answers only when no model could be loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools import Logger

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

logger = Logger(child=True)


@dataclass(frozen=True)
class Serving:
    """What answers right now: a predictor, or the reason plan B must."""

    predictor: Predictor | None
    version: str | None
    fallback: FallbackAnswer | None
    reason: str | None
    # Set while the last good version answers because the pointer's cannot be loaded.
    stale: str | None = None


class LiveModel:
    """Keeps the live version loaded in this container."""

    def __init__(
        self,
        *,
        store: ModelStore,
        pointer: PointerStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._pointer_store = pointer
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._checked_at: float | None = None
        self._pointer: LivePointer | None = None  # the last pointer read, None until one was
        self._serving = Serving(None, None, None, REASON_NO_LIVE_MODEL)

    def current(self) -> Serving:
        """The serving state, refreshed from the registry when the interval has passed."""
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._refresh_seconds:
            self._checked_at = now
            self._refresh()
        return self._serving

    def _refresh(self) -> None:
        try:
            pointer = self._pointer_store.read()
        except Exception as exc:  # registry, network or parse errors alike: keep serving what we have
            if self._pointer is None:
                logger.error("live pointer unreadable at start; plan B answers", extra={"error": str(exc)})
                self._serving = Serving(None, None, None, REASON_REGISTRY_UNREACHABLE)
                return
            logger.warning("live pointer unreadable; keeping the last one", extra={"error": str(exc)})
            pointer = self._pointer
        self._pointer = pointer
        loaded = self._serving.predictor
        if loaded is not None and pointer.version == loaded.version:
            self._serving = Serving(loaded, loaded.version, pointer.fallback, None)
            return
        if pointer.version is None:
            self._serving = Serving(None, None, pointer.fallback, REASON_NO_LIVE_MODEL)
            return
        predictor, failure = self._load(pointer.version)
        if predictor is not None:
            logger.info("live model loaded", extra={"version": pointer.version})
            self._serving = Serving(predictor, pointer.version, pointer.fallback, None)
            return
        # The pointer's version cannot serve: the model this container has, else the one the pointer replaced.
        last_good = loaded
        if last_good is None and pointer.previous is not None:
            last_good, _ = self._load(pointer.previous)
        if last_good is None:
            logger.error("no loadable model; plan B answers", extra={"version": pointer.version, "error": failure})
            self._serving = Serving(None, pointer.version, pointer.fallback, REASON_MODEL_UNAVAILABLE)
            return
        stale = f"live version {pointer.version} cannot be loaded ({failure}); the last good version answers"
        logger.error(stale, extra={"version": pointer.version, "serving": last_good.version, "error": failure})
        self._serving = Serving(last_good, last_good.version, last_good.manifest.fallback, None, stale=stale)

    def _load(self, version: str) -> tuple[Predictor | None, str]:
        """The predictor of `version`, or None and why it cannot be had."""
        try:
            manifest, onnx_bytes = self._store.get_bundle(version)
            if manifest.version != version:
                raise BundleError(f"manifest names {manifest.version}, the registry {version}")
            return Predictor(manifest, onnx_bytes), ""
        except (KeyError, BundleError, ModelUnavailable) as exc:
            return None, f"unusable bundle: {exc}"
        except Exception as exc:  # S3 unreachable and the like: retried at the next refresh
            return None, f"bundle unreachable: {exc}"


class ModelSource(Protocol):
    """The part of a function's configuration that says where its live model is (InferenceConfig, WorkerConfig)."""

    @property
    def artifacts_bucket(self) -> str: ...
    @property
    def live_pointer_parameter(self) -> str: ...
    @property
    def pointer_refresh_seconds(self) -> float: ...


def live_model_of(config: ModelSource) -> LiveModel:
    """The live model of a function, from the bundles and the pointer its configuration names."""
    return LiveModel(
        store=factory.model_store(config.artifacts_bucket),
        pointer=factory.pointer_store(config.live_pointer_parameter),
        refresh_seconds=config.pointer_refresh_seconds,
    )
