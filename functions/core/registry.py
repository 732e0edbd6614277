"""The model registry: which version is live, and how it moves (promote, rollback).

The live pointer is one small document; promotion and rollback are one write
each, and every write records the time, the reason and the version it
replaced. The pointer also carries the live model's fallback answer, so plan
B never depends on the bundle it stands in for, and the rollout of a candidate
in shadow or canary (functions.core.rollout), if one is under way.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from functions.core.errors import RegistryError
from functions.core.manifest import FallbackAnswer, Manifest
from functions.core.rollout import Rollout, RolloutMode

Action = Literal["init", "promote", "rollback"]

# The live pointer's lock is a sibling parameter with this suffix (runtime and grants share the name).
POINTER_LOCK_SUFFIX = "-lock"


class LivePointer(BaseModel):
    """The live version and how it got there."""

    model_config = ConfigDict(frozen=True)

    version: str | None = None
    previous: str | None = None
    action: Action = "init"
    reason: str = ""
    at: datetime | None = None
    fallback: FallbackAnswer | None = None
    digest: str | None = Field(
        None, description="The live bundle's full SHA-256 (Manifest.content_digest), checked at every load."
    )
    # A candidate in shadow or canary beside `version`. Starting or ending a rollout changes only
    # this field: the live version, its history and the rollback watcher's window stay as they were.
    rollout: Rollout | None = None


class ModelStore(Protocol):
    """Where bundles live, keyed by version."""

    def put_bundle(self, manifest: Manifest, onnx_bytes: bytes) -> bool: ...
    def get_bundle(self, version: str) -> tuple[Manifest, bytes]: ...
    def get_manifest(self, version: str) -> Manifest: ...
    def list_versions(self) -> list[str]: ...


class PointerStore(Protocol):
    """Where the live pointer lives, with its history (oldest first).

    `locked()` holds the one right to move the pointer: a read and a write inside it
    are a compare-and-set, so two writers at the same moment cannot lose an entry.
    """

    def read(self) -> LivePointer: ...
    def write(self, pointer: LivePointer) -> None: ...
    def history(self) -> list[LivePointer]: ...
    def locked(self) -> AbstractContextManager[None]: ...


class Registry:
    """Registers bundles and moves the live pointer."""

    def __init__(self, store: ModelStore, pointer: PointerStore) -> None:
        self.store = store
        self.pointer = pointer

    def register(self, manifest: Manifest, onnx_bytes: bytes) -> bool:
        """Store a bundle under its version; False when that version was already there."""
        if manifest.content_version(onnx_bytes) != manifest.version:
            raise RegistryError(f"bundle {manifest.version!r} does not match its content hash")
        return self.store.put_bundle(manifest, onnx_bytes)

    def live(self) -> LivePointer:
        return self.pointer.read()

    def start_rollout(
        self, version: str, mode: RolloutMode, percent: float, reason: str, *, now: datetime | None = None
    ) -> LivePointer:
        """Put `version` beside the live one, in shadow or canary for `percent` (replacing any rollout)."""
        _, digest = self.verified(version)
        with self.pointer.locked():
            current = self.pointer.read()
            if current.version is None:
                raise RegistryError("no live version to roll a candidate out beside: promote one first")
            if current.version == version:
                raise RegistryError(f"{version} is the live version already; a rollout needs another version")
            rollout = Rollout(
                candidate=version,
                mode=mode,
                percent=percent,
                started_at=now or datetime.now(UTC),
                reason=reason,
                digest=digest,
            )
            return self._write(current.model_copy(update={"rollout": rollout}))

    def end_rollout(self) -> LivePointer:
        """Take the candidate out; the live version is untouched. Ending no rollout changes nothing."""
        with self.pointer.locked():
            current = self.pointer.read()
            if current.rollout is None:
                return current
            return self._write(current.model_copy(update={"rollout": None}))

    def promote(self, version: str, reason: str, *, now: datetime | None = None) -> LivePointer:
        """Make `version` live (ending any rollout). Promoting the live version again changes nothing."""
        manifest, digest = self.verified(version)
        with self.pointer.locked():
            current = self.pointer.read()
            if current.version == version and current.rollout is None:
                return current
            if current.version == version:
                return self._write(current.model_copy(update={"rollout": None}))
            return self._write(
                LivePointer(
                    version=version,
                    previous=current.version,
                    action="promote",
                    reason=reason,
                    at=now or datetime.now(UTC),
                    fallback=manifest.fallback,
                    digest=digest,
                )
            )

    def rollback(self, reason: str, *, now: datetime | None = None) -> LivePointer:
        """Restore the version that was live before the current one."""
        with self.pointer.locked():
            current = self.pointer.read()
            if current.previous is None:
                raise RegistryError("nothing to roll back to: the live version has no predecessor")
            target = current.previous
            manifest, digest = self.verified(target)
            return self._write(
                LivePointer(
                    version=target,
                    previous=self._predecessor_of(target),
                    action="rollback",
                    reason=reason,
                    at=now or datetime.now(UTC),
                    fallback=manifest.fallback,
                    digest=digest,
                )
            )

    def _predecessor_of(self, version: str) -> str | None:
        """What was live before `version` last became live, so repeated rollbacks walk back in time."""
        for entry in reversed(self.pointer.history()):
            if entry.version == version and entry.action != "init":
                return entry.previous
        return None

    def _unknown(self, version: str) -> RegistryError:
        known = ", ".join(self.store.list_versions()) or "none"
        return RegistryError(f"unknown model version {version!r}; registered: {known}")

    def verified(self, version: str) -> tuple[Manifest, str]:
        """The manifest and full digest of a registered bundle that matches its version (else RegistryError)."""
        try:
            manifest, graph = self.store.get_bundle(version)
        except KeyError as exc:
            raise self._unknown(version) from exc
        digest = manifest.content_digest(graph)
        if not digest.startswith(version) or manifest.version != version:
            raise RegistryError(f"bundle {version} does not match its content hash: it cannot go live")
        return manifest, digest

    def _write(self, pointer: LivePointer) -> LivePointer:
        self.pointer.write(pointer)
        return pointer


class ModelSummary(BaseModel):
    """One row of `slipway models`."""

    version: str
    live: bool
    metric: str
    score: float = Field(description="The gate metric on the holdout set.")
    rows: int
    data_hash: str
    data_up_to: datetime | None = Field(
        None, description="The upload time of the newest object it was trained on (None: trained off a stack)."
    )


def summarise(registry: Registry) -> list[ModelSummary]:
    """Every registered version, with the live one marked."""
    live = registry.live().version
    summaries = []
    for version in registry.store.list_versions():
        manifest = registry.store.get_manifest(version)
        summaries.append(
            ModelSummary(
                version=version,
                live=version == live,
                metric=manifest.metric,
                score=manifest.metrics[manifest.metric],
                rows=manifest.lineage.rows,
                data_hash=manifest.lineage.data_hash[:12],
                data_up_to=manifest.lineage.data.watermark if manifest.lineage.data else None,
            )
        )
    return summaries
