"""The model a warm container serves: loaded once, re-pointed when the registry moves.

The live pointer is re-read at most every `refresh_seconds`; a bundle is
loaded only when the pointer names a new version. Whatever fails (pointer,
bundle, graph) leaves a reason that /health reports and plan B answers with.
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
from functions.core.predictor import REASON_MODEL_UNAVAILABLE, REASON_NO_LIVE_MODEL, Predictor
from functions.core.registry import LivePointer, ModelStore, PointerStore

logger = Logger(child=True)


@dataclass(frozen=True)
class Serving:
    """What answers right now: a predictor, or the reason plan B must."""

    predictor: Predictor | None
    version: str | None
    fallback: FallbackAnswer | None
    reason: str | None


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
        self._pointer = LivePointer()
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
            logger.warning("live pointer unreadable; keeping the last one", extra={"error": str(exc)})
            pointer = self._pointer
        loaded = self._serving.predictor
        if loaded is not None and pointer.version == loaded.version:
            self._pointer = pointer
            return
        self._pointer = pointer
        self._serving = self._load(pointer)

    def _load(self, pointer: LivePointer) -> Serving:
        if pointer.version is None:
            return Serving(None, None, pointer.fallback, REASON_NO_LIVE_MODEL)
        try:
            manifest, onnx_bytes = self._store.get_bundle(pointer.version)
            if manifest.version != pointer.version:
                raise BundleError(f"manifest names {manifest.version}, pointer names {pointer.version}")
            predictor = Predictor(manifest, onnx_bytes)
        except (KeyError, BundleError, ModelUnavailable) as exc:
            logger.error("live bundle unusable; plan B answers", extra={"version": pointer.version, "error": str(exc)})
            return Serving(None, pointer.version, pointer.fallback, REASON_MODEL_UNAVAILABLE)
        except Exception as exc:  # S3 unreachable and the like: plan B, retried at the next refresh
            logger.error(
                "live bundle unreachable; plan B answers", extra={"version": pointer.version, "error": str(exc)}
            )
            return Serving(None, pointer.version, pointer.fallback, REASON_MODEL_UNAVAILABLE)
        logger.info("live model loaded", extra={"version": pointer.version})
        return Serving(predictor, pointer.version, pointer.fallback, None)


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
