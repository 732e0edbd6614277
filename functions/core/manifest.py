"""The model bundle's manifest: the contract between training and serving.

A bundle is `model.onnx` plus `manifest.json`; nothing in it is a pickle. Its
version is a content hash over the ONNX bytes and everything in the manifest
that shapes an answer, so the same data and seed give the same version, and
lineage (who built it, when, with what code) never changes it.

`capture_exclude` names the features the serving function never records
(capture lines, hence drift reports). It enters the version hash when it is
not empty, although it changes what the endpoint records and not what it
answers: a bundle is immutable under its version (the model store refuses to
overwrite one), so a recipe that only adds a feature to CAPTURE_EXCLUDE must
get a new version, or the stored bundle would go on capturing it; and every
capture record of a version was then written under the same exclusion. An
empty list is left out of the hash and of the manifest's JSON, so bundles made
before the field existed keep their version, their bytes and their validity.

`segments` are the recipe's SEGMENTS: the features the monitor splits served
rows by to compare the model's answers and errors across groups (bias across
segments, docs/monitoring.md). Like `capture_exclude`, they enter the hash when
not empty (each version's reports are always over the same segments) and are
left out of it, and of the JSON, when empty.
"""

from __future__ import annotations

import hashlib
import json
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.core.features import FeatureSpec

SCHEMA_VERSION = 1
VERSION_LENGTH = 16

Task = Literal["classification", "regression"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureBaseline(_Frozen):
    """The training distribution of one feature, in frozen bins."""

    name: str
    edges: tuple[float, ...] = Field(default=(), description="Inner bin edges; the outer bins are open.")
    categories: tuple[str, ...] = Field(default=(), description="Category bins; one more bin holds unseen values.")
    proportions: tuple[float, ...] = Field(description="Training share per bin (len(edges)+1, or len(categories)+1).")
    missing_rate: float = Field(ge=0, le=1)
    mean: float | None = None
    std: float | None = None


class Baseline(_Frozen):
    """Training distributions for drift detection: every feature and the prediction."""

    rows: int = Field(ge=1)
    features: tuple[FeatureBaseline, ...]
    prediction: FeatureBaseline


class FallbackAnswer(_Frozen):
    """Plan B: what is answered when the model cannot answer."""

    label: str | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None


class Parity(_Frozen):
    """How closely the ONNX graph matches scikit-learn on the holdout set."""

    rows: int
    labels_equal: bool | None = None
    max_abs_diff: float
    tolerance: float


SegmentKind = Literal["category", "boolean", "numeric"]


class SegmentSpec(_Frozen):
    """One segment feature: its values (category, boolean) or the inner edges of its bins (numeric)."""

    feature: str
    kind: SegmentKind
    values: tuple[str, ...] = Field(default=(), description="One segment per value (category, boolean).")
    edges: tuple[float, ...] = Field(
        default=(), description="Inner edges of numeric segments: bin i holds edges[i-1] <= x < edges[i]."
    )

    @model_validator(mode="after")
    def _shape(self) -> SegmentSpec:
        if self.kind == "numeric":
            if not self.edges or self.values:
                raise ValueError(f"numeric segment feature {self.feature!r} needs edges and no values")
            if any(b <= a for a, b in pairwise(self.edges)):
                raise ValueError(f"the edges of segment feature {self.feature!r} must increase strictly")
        elif not self.values or self.edges:
            raise ValueError(f"segment feature {self.feature!r} needs its values and no edges")
        return self


class Lineage(_Frozen):
    """Where the bundle came from. Not part of the version hash."""

    data_hash: str
    rows: int
    seed: int
    recipe: str
    code_revision: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)


class Manifest(_Frozen):
    """Everything serving and monitoring need to know about one model version."""

    schema_version: int = SCHEMA_VERSION
    version: str = ""
    task: Task
    classes: tuple[str, ...] | None = None
    feature_spec: FeatureSpec
    metric: str = Field(description="The holdout metric the retrain gate compares.")
    metrics: dict[str, float]
    fallback: FallbackAnswer
    baseline: Baseline
    parity: Parity
    # The single matrix input of bundles made before graphs took one input per feature; serving reads
    # the graph's own inputs (functions.core.predictor.GraphInputs). Kept: it is in older versions' hash.
    onnx_input: str = "input"
    lineage: Lineage
    capture_exclude: tuple[str, ...] = Field(
        default=(),
        description="Features whose values are never captured (in spec order); their drift is not computed.",
    )
    segments: tuple[SegmentSpec, ...] = Field(
        default=(), description="The features the monitor compares answers and errors across (recipe SEGMENTS)."
    )

    @model_validator(mode="after")
    def _task_shape(self) -> Manifest:
        if self.task == "classification" and not self.classes:
            raise ValueError("a classification manifest needs its classes")
        if self.metric not in self.metrics:
            raise ValueError(f"the gate metric {self.metric!r} is missing from metrics")
        unknown = sorted(set(self.capture_exclude) - set(self.feature_spec.names))
        if unknown:
            raise ValueError(f"capture_exclude names features the spec does not have: {unknown}")
        segmented = [s.feature for s in self.segments]
        unknown = sorted(set(segmented) - set(self.feature_spec.names))
        if unknown:
            raise ValueError(f"segments name features the spec does not have: {unknown}")
        if len(set(segmented)) != len(segmented):
            raise ValueError(f"segments name a feature twice: {segmented}")
        if set(segmented) & set(self.capture_exclude):
            raise ValueError("a segment feature cannot be excluded from capture: the monitor reads its values")
        return self

    def _unset_when_empty(self) -> set[str]:
        # Fields added after bundles were made: when empty they are not written, so old versions hash as before.
        return {name for name in ("capture_exclude", "segments") if not getattr(self, name)}

    def content_version(self, onnx_bytes: bytes) -> str:
        """The version this manifest and graph hash to."""
        contract = self.model_dump(mode="json", exclude={"version", "lineage", *self._unset_when_empty()})
        digest = hashlib.sha256(onnx_bytes)
        digest.update(json.dumps(contract, sort_keys=True, separators=(",", ":")).encode())
        return digest.hexdigest()[:VERSION_LENGTH]

    def with_version(self, onnx_bytes: bytes) -> Manifest:
        """A copy stamped with its content version."""
        return self.model_copy(update={"version": self.content_version(onnx_bytes)})

    def to_json(self) -> bytes:
        """Canonical bytes: the same manifest always serialises identically."""
        data = self.model_dump(mode="json", exclude=self._unset_when_empty())
        return (json.dumps(data, sort_keys=True, indent=2) + "\n").encode()
