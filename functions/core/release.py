"""A release: a model that passed one stage's gate, copied to another stage with the record of where it came from.

The bundle is copied byte for byte. The target's registry checks the content hash before it
writes (`Registry.register`) and again on the copy it reads back (`Registry.verified`), and the
record of the release (source stage, the gate decision and rollout outcome it passed there,
reason, time) is written beside the bundle. Every refusal happens before anything is written
in the target. Making the copy live is the target stage's own policy (`retrain.rollout`), which
the caller applies afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from functions.core.errors import RegistryError
from functions.core.gate import GateDecision, answer_differences, spec_differences
from functions.core.registry import LivePointer, Registry


class ReleaseRefused(RegistryError):
    """A release was refused before anything was written in the target stage."""


class RolloutPassed(BaseModel):
    """The outcome of the source stage's rollout that made the version live there."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    action: str
    reason: str
    at: datetime | None = None


class ReleaseRecord(BaseModel):
    """Where a released version came from and why it was let in (models/<version>/releases/ of the target)."""

    model_config = ConfigDict(frozen=True)

    version: str
    digest: str = Field(description="The bundle's full SHA-256, equal in both stages.")
    source_stage: str
    target_stage: str
    released_at: datetime
    reason: str
    gate: GateDecision = Field(description="The source stage's gate decision that promoted the version.")
    rollout: RolloutPassed | None = Field(
        None, description="The source stage's rollout that made it live (None: that stage promotes at once)."
    )
    source_promotion: LivePointer = Field(description="The source's live pointer entry that made it live.")
    spec_differences: list[str] = Field(
        default_factory=list, description="How its feature spec differs from the target's live model (allowed)."
    )
    target_live: str | None = Field(None, description="The target's live version when it was released.")


class SourceEvidence(Protocol):
    """What the source stage recorded of a version's way to live."""

    def gate_decision(self, version: str) -> GateDecision | None:
        """The newest gate decision that promoted `version`, if any."""
        ...

    def rollout_outcome(self, version: str) -> RolloutPassed | None:
        """The newest rollout outcome that promoted `version`, if any."""
        ...


class ReleaseRecords(Protocol):
    """Where the target stage keeps its release records."""

    def put_release(self, record: ReleaseRecord) -> str: ...


def release(
    source: Registry,
    target: Registry,
    evidence: SourceEvidence,
    records: ReleaseRecords,
    *,
    version: str,
    source_stage: str,
    target_stage: str,
    reason: str,
    allow_spec_change: bool = False,
    now: datetime | None = None,
) -> ReleaseRecord:
    """Copy `version` from `source` to `target` and record it; ReleaseRefused (nothing written) when it never
    passed the source's gate or was never live there, its spec does not fit the target's live model, or its
    content does not match its hash."""
    where = f"{source_stage} to {target_stage}"
    try:
        manifest, graph = source.store.get_bundle(version)
    except KeyError as exc:
        known = ", ".join(source.store.list_versions()) or "none"
        raise ReleaseRefused(f"{version!r} is not registered in {source_stage}; registered: {known}") from exc
    gate = evidence.gate_decision(version)
    if gate is None:
        raise ReleaseRefused(
            f"{version} never passed {source_stage}'s gate (no gate decision promoted it): only a model the "
            f"retrain pipeline gated is released; run `slipway retrain --stage {source_stage}`"
        )
    promotion = _promotion_of(source, version)
    if promotion is None:
        raise ReleaseRefused(
            f"{version} passed {source_stage}'s gate but was never live there (its rollout refused it or it waits "
            "for a person): release a version that served in the source stage"
        )
    live = target.live()
    problems: list[str] = []
    if live.version is not None and live.version != version:
        live_manifest = target.store.get_manifest(live.version)
        problems = [
            *spec_differences(live_manifest.feature_spec, manifest.feature_spec),
            *answer_differences(live_manifest, manifest),
        ]
        if problems and not allow_spec_change:
            raise ReleaseRefused(
                f"{version} cannot answer {target_stage}'s requests like its live model {live.version}: "
                + "; ".join(problems)
                + " (callers must change first; then release with --allow-spec-change)"
            )
    expected = manifest.content_digest(graph)
    try:
        target.register(manifest, graph)
    except RegistryError as exc:
        raise ReleaseRefused(f"release of {version} from {where} refused on arrival: {exc}; nothing written") from exc
    try:
        _, arrived = target.verified(version)
    except RegistryError as exc:
        raise RegistryError(
            f"the copy of {version} in {target_stage} does not match its content hash: it cannot go live, and "
            f"{target_stage}'s live model is unchanged ({exc})"
        ) from exc
    if arrived != expected:
        raise RegistryError(
            f"the copy of {version} in {target_stage} hashes to {arrived[:12]}, not {expected[:12]} as in "
            f"{source_stage}: it cannot go live, and {target_stage}'s live model is unchanged"
        )
    record = ReleaseRecord(
        version=version,
        digest=arrived,
        source_stage=source_stage,
        target_stage=target_stage,
        released_at=now or datetime.now(UTC),
        reason=reason,
        gate=gate,
        rollout=evidence.rollout_outcome(version),
        source_promotion=promotion,
        spec_differences=problems,
        target_live=live.version,
    )
    records.put_release(record)
    return record


def _promotion_of(source: Registry, version: str) -> LivePointer | None:
    """The newest entry of the source's pointer history that made `version` live."""
    for entry in reversed(source.pointer.history()):
        if entry.version == version and entry.action == "promote":
            return entry
    return None
