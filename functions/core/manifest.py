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
`outliers` (the detector whose distance the graph computes) is treated alike:
absent, as in bundles made before it existed, it is not hashed or written.

`feature_report` (which features earn their place, measured on the holdout by
functions.training.importance) never enters the version hash: it is a
measurement about the model and changes no answer. Like lineage it is still
reproducible, since training measures it with the recipe's seed. Bundles made
before it existed have none; it is then left out of the JSON too.

`segments` are the recipe's SEGMENTS: the features the monitor splits served
rows by to compare the model's answers and errors across groups (bias across
segments, docs/monitoring.md). Like `capture_exclude`, they enter the hash when
not empty (each version's reports are always over the same segments) and are
left out of it, and of the JSON, when empty.

`calibration` maps the model's probabilities to the frequencies observed on the
holdout (isotonic, per class): what estimated quality without labels reads
(functions.core.estimated_quality). Like the feature report it is a measurement
about the model, changes no answer and never enters the version hash; bundles
made before it existed have none and are written and loaded as before.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
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


class OutlierDetector(_Frozen):
    """The bundle's outlier detector (functions.training.outliers): its distance is an output of the graph."""

    method: Literal["minimum_covariance_determinant", "ledoit_wolf"]
    share: float = Field(gt=0, lt=0.5, description="The share of training rows the threshold was set to flag.")
    threshold: float = Field(gt=0, description="The distance above which a row is flagged (its score is 1 there).")
    features: tuple[str, ...] = Field(description="The features the distance is measured over.")
    dimensions: int = Field(ge=1, description="Directions of the training scatter the distance uses.")
    training_flagged: float = Field(ge=0, le=1, description="Share of training rows above the threshold.")
    holdout_flagged: float = Field(ge=0, le=1, description="Share of holdout rows above the threshold.")


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


class SourceObject(_Frozen):
    """One source object a bundle was trained on, exactly as read."""

    uri: str
    etag: str
    version_id: str | None = None
    rows: int


class DataLineage(_Frozen):
    """The snapshot of the training table a bundle was trained on (docs/retrain.md, "Lineage")."""

    snapshot_hash: str = Field(description="SHA-256 of the run's snapshot record (its objects, parts and labels).")
    watermark: datetime | None = Field(description="Upload time of the newest object: how recent the data is.")
    objects: tuple[SourceObject, ...] = ()
    labelled_rows: int = 0


class Lineage(_Frozen):
    """Where the bundle came from. Not part of the version hash."""

    data_hash: str
    rows: int
    seed: int
    recipe: str
    code_revision: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    data: DataLineage | None = Field(None, description="The table's snapshot; None when trained off a stack.")


class FeatureImportance(_Frozen):
    """How much one feature helps: the loss of the holdout metric when its values are shuffled."""

    name: str
    importance: float = Field(description="Mean loss of the metric over the repeats; positive: the feature helps.")
    std: float = Field(ge=0, description="Standard deviation of the loss over the repeats.")
    rank: int = Field(ge=1, description="1 for the feature whose shuffling costs the most.")
    important: bool = Field(description="Whether the importance reaches the report's threshold.")


class WithoutUnimportant(_Frozen):
    """The recipe refitted with the unimportant features held at their imputation value, scored on the holdout."""

    features: tuple[str, ...] = Field(min_length=1, description="The features held constant, in spec order.")
    metric: float | None = Field(None, description="The holdout metric without them; None when the refit failed.")
    error: str | None = Field(None, description="Why the refit or its scoring failed.")


class FeatureReport(_Frozen):
    """Which features earn their place: permutation importance on the holdout rows. Not part of the version hash."""

    metric: str = Field(description="The recipe's metric, which importance is measured in.")
    threshold: float = Field(ge=0, description="Below this importance a feature counts as unimportant.")
    threshold_share: float | None = Field(
        None, ge=0, description="The threshold as a share of threshold_scale; None when the recipe set it absolute."
    )
    threshold_scale: float | None = Field(
        None, ge=0, description="The metric's scale: 1 for a score bounded by 1, the holdout value for an error."
    )
    repeats: int = Field(ge=1, description="Shuffles per feature.")
    rows: int = Field(ge=1, description="Holdout rows measured on (a seeded sample when the holdout is larger).")
    holdout_metric: float = Field(description="The metric on those rows with every feature.")
    features: tuple[FeatureImportance, ...] = Field(description="Every feature, in spec order.")
    without_unimportant: WithoutUnimportant | None = Field(
        None, description="The metric without the unimportant features; None when every feature is important."
    )

    def by_name(self) -> dict[str, FeatureImportance]:
        return {feature.name: feature for feature in self.features}


class ClassCalibration(_Frozen):
    """The isotonic map of one class's probability: piecewise linear through its knots, flat beyond them."""

    name: str = Field(description="The class whose probability (one vs rest) the map calibrates.")
    x: tuple[float, ...] = Field(min_length=1, description="The model's probability at each knot, non-decreasing.")
    y: tuple[float, ...] = Field(min_length=1, description="The observed frequency at each knot, non-decreasing.")

    @model_validator(mode="after")
    def _knots(self) -> ClassCalibration:
        if len(self.x) != len(self.y):
            raise ValueError(f"the calibration of {self.name!r} needs as many x as y knots")
        if any(b < a for a, b in pairwise(self.x)) or any(b < a for a, b in pairwise(self.y)):
            raise ValueError(f"the calibration knots of {self.name!r} must not decrease")
        if any(not 0 <= v <= 1 for v in (*self.x, *self.y)):
            raise ValueError(f"the calibration knots of {self.name!r} must be probabilities in [0, 1]")
        return self


class Calibration(_Frozen):
    """How the model's probabilities map to observed frequencies, fitted on the holdout. Not part of the version hash.

    A binary model maps its positive class (classes[1]); a multiclass model maps each class one vs rest
    and the mapped row is normalised to sum to 1.
    """

    method: Literal["isotonic"] = "isotonic"
    classes: tuple[ClassCalibration, ...] = Field(min_length=1)
    rows: int = Field(ge=1, description="Holdout rows the maps were fitted on.")
    folds: int = Field(ge=2, description="Folds of the cross-fitting that measured the calibration errors.")
    bins: int = Field(ge=1, description="Equal-width confidence bins of the expected calibration error.")
    calibration_error: float = Field(
        ge=0, le=1, description="Expected calibration error of the calibrated probabilities, cross-fitted."
    )
    raw_calibration_error: float = Field(ge=0, le=1, description="The same error of the model's own probabilities.")


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
    outliers: OutlierDetector | None = Field(None, description="The outlier detector in the graph; None: none.")
    feature_report: FeatureReport | None = None
    segments: tuple[SegmentSpec, ...] = Field(
        default=(), description="The features the monitor compares answers and errors across (recipe SEGMENTS)."
    )
    calibration: Calibration | None = Field(
        None, description="The holdout calibration of the probabilities (estimated quality); None: none."
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
        report = self.feature_report
        if report is not None and [f.name for f in report.features] != self.feature_spec.names:
            raise ValueError("the feature report must name every feature of the spec, in spec order")
        segmented = [s.feature for s in self.segments]
        unknown = sorted(set(segmented) - set(self.feature_spec.names))
        if unknown:
            raise ValueError(f"segments name features the spec does not have: {unknown}")
        if len(set(segmented)) != len(segmented):
            raise ValueError(f"segments name a feature twice: {segmented}")
        if self.calibration is not None and not set(c.name for c in self.calibration.classes) <= set(
            self.classes or ()
        ):
            raise ValueError("the calibration names classes the model does not have")
        if set(segmented) & set(self.capture_exclude):
            raise ValueError("a segment feature cannot be excluded from capture: the monitor reads its values")
        return self

    def _unset_when_empty(self) -> set[str]:
        # Fields added after bundles were made: when empty they are not written, so old versions hash as before.
        optional = ("capture_exclude", "segments", "outliers", "feature_report", "calibration")
        return {name for name in optional if getattr(self, name) in (None, ())}

    def content_digest(self, onnx_bytes: bytes) -> str:
        """The full SHA-256 (hex) of the graph and the canonical contract: what the live pointer records and every
        load checks. The version is its first VERSION_LENGTH characters, for display and keys."""
        unhashed = {"version", "lineage", "feature_report", "calibration", *self._unset_when_empty()}
        contract = self.model_dump(mode="json", exclude=unhashed)
        digest = hashlib.sha256(onnx_bytes)
        digest.update(json.dumps(contract, sort_keys=True, separators=(",", ":")).encode())
        return digest.hexdigest()

    def content_version(self, onnx_bytes: bytes) -> str:
        """The version this manifest and graph hash to."""
        return self.content_digest(onnx_bytes)[:VERSION_LENGTH]

    def with_version(self, onnx_bytes: bytes) -> Manifest:
        """A copy stamped with its content version."""
        return self.model_copy(update={"version": self.content_version(onnx_bytes)})

    def to_json(self) -> bytes:
        """Canonical bytes: the same manifest always serialises identically."""
        data = self.model_dump(mode="json", exclude=self._unset_when_empty())
        return (json.dumps(data, sort_keys=True, indent=2) + "\n").encode()
