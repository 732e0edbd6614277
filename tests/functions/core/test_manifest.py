"""The bundle manifest: content version, canonical JSON, validation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from functions.core.manifest import VERSION_LENGTH, FallbackAnswer, Manifest
from functions.training.train import Bundle


def test_content_version_is_stable_and_is_the_stamped_version(bundle: Bundle) -> None:
    manifest = bundle.manifest

    version = manifest.content_version(bundle.onnx_bytes)

    assert version == manifest.content_version(bundle.onnx_bytes) == bundle.version
    assert len(version) == VERSION_LENGTH
    assert manifest.with_version(bundle.onnx_bytes) == manifest


def test_content_version_ignores_the_version_field(bundle: Bundle) -> None:
    unstamped = bundle.manifest.model_copy(update={"version": ""})

    assert unstamped.content_version(bundle.onnx_bytes) == bundle.version
    assert unstamped.with_version(bundle.onnx_bytes).version == bundle.version


def test_content_version_changes_with_the_onnx_bytes(bundle: Bundle) -> None:
    manifest = bundle.manifest

    assert manifest.content_version(bundle.onnx_bytes + b"\x00") != bundle.version
    assert manifest.content_version(bundle.onnx_bytes[:-1]) != bundle.version


@pytest.mark.parametrize(
    "update",
    [
        {"fallback": FallbackAnswer(label="malignant", probabilities={"benign": 0.4, "malignant": 0.6})},
        {"metrics": {"accuracy": 0.5, "roc_auc": 0.5, "f1_macro": 0.5, "log_loss": 1.0}},
        {"metric": "accuracy"},
        {"onnx_input": "x"},
    ],
    ids=["fallback", "metrics", "metric", "onnx_input"],
)
def test_content_version_changes_with_a_contract_field(bundle: Bundle, update: dict[str, object]) -> None:
    changed = bundle.manifest.model_copy(update=update)

    assert changed.content_version(bundle.onnx_bytes) != bundle.version


def test_content_version_changes_with_the_feature_spec(bundle: Bundle) -> None:
    spec = bundle.manifest.feature_spec
    first = spec.features[0].model_copy(update={"precision": 1})
    changed = bundle.manifest.model_copy(
        update={"feature_spec": spec.model_copy(update={"features": (first, *spec.features[1:])})}
    )

    assert changed.content_version(bundle.onnx_bytes) != bundle.version


def test_content_version_ignores_lineage(bundle: Bundle) -> None:
    lineage = bundle.manifest.lineage.model_copy(
        update={"code_revision": "deadbeef", "libraries": {"scikit-learn": "0.0.1"}, "recipe": "elsewhere"}
    )
    relabelled = bundle.manifest.model_copy(update={"lineage": lineage})

    assert relabelled != bundle.manifest
    assert relabelled.content_version(bundle.onnx_bytes) == bundle.version


def test_to_json_is_canonical_and_round_trips(bundle: Bundle) -> None:
    manifest = bundle.manifest

    first, second = manifest.to_json(), manifest.to_json()
    parsed = Manifest.model_validate_json(first)

    assert first == second
    assert first.endswith(b"\n")
    assert parsed == manifest
    assert parsed.to_json() == first
    assert parsed.content_version(bundle.onnx_bytes) == bundle.version


def test_to_json_does_not_depend_on_field_order(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    reordered = Manifest.model_validate(dict(reversed(list(data.items()))))

    assert reordered.to_json() == bundle.manifest.to_json()
    assert list(json.loads(bundle.manifest.to_json())) == sorted(data)


def test_classification_manifest_needs_its_classes(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    data["classes"] = None

    with pytest.raises(ValidationError, match="a classification manifest needs its classes"):
        Manifest.model_validate(data)


def test_gate_metric_must_be_among_the_metrics(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    data["metrics"] = {"accuracy": 0.9}
    data["metric"] = "roc_auc"

    with pytest.raises(ValidationError, match="the gate metric 'roc_auc' is missing from metrics"):
        Manifest.model_validate(data)


def test_manifest_refuses_unknown_fields(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    data["pickle"] = "gASV"

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Manifest.model_validate(data)


def test_a_manifest_without_capture_exclude_loads_and_keeps_its_version(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    assert "capture_exclude" not in data  # as every manifest written before the field existed

    older = Manifest.model_validate(data)
    explicit = Manifest.model_validate({**data, "capture_exclude": []})

    assert older.capture_exclude == explicit.capture_exclude == ()
    assert older.content_version(bundle.onnx_bytes) == explicit.content_version(bundle.onnx_bytes) == bundle.version
    assert explicit.to_json() == bundle.manifest.to_json()


def test_capture_exclude_enters_the_version_and_round_trips(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    private = Manifest.model_validate({**data, "capture_exclude": ["mean_radius"]}).with_version(bundle.onnx_bytes)

    assert private.version != bundle.version
    assert Manifest.model_validate_json(private.to_json()) == private
    assert json.loads(private.to_json())["capture_exclude"] == ["mean_radius"]


def test_capture_exclude_must_name_features_of_the_spec(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    data["capture_exclude"] = ["mean_radius", "postcode"]

    with pytest.raises(ValidationError, match=r"capture_exclude names features the spec does not have: \['postcode'\]"):
        Manifest.model_validate(data)


# The feature report


def test_the_feature_report_is_left_out_of_the_version(bundle: Bundle) -> None:
    report = bundle.manifest.feature_report
    assert report is not None
    without = bundle.manifest.model_copy(update={"feature_report": None})
    other = bundle.manifest.model_copy(update={"feature_report": report.model_copy(update={"threshold": 0.5})})

    assert without.content_version(bundle.onnx_bytes) == bundle.version
    assert other.content_version(bundle.onnx_bytes) == bundle.version


def test_a_manifest_without_a_feature_report_serialises_as_before_the_field(bundle: Bundle) -> None:
    without = bundle.manifest.model_copy(update={"feature_report": None})

    data = json.loads(without.to_json())

    assert "feature_report" not in data
    assert Manifest.model_validate(data) == without
    assert "feature_report" in json.loads(bundle.manifest.to_json())


def test_a_feature_report_must_name_the_spec_features_in_order(bundle: Bundle) -> None:
    report = bundle.manifest.feature_report
    assert report is not None
    reordered = report.model_copy(update={"features": tuple(reversed(report.features))})
    data = {**bundle.manifest.model_dump(mode="json"), "feature_report": reordered.model_dump(mode="json")}

    with pytest.raises(ValidationError, match="the feature report must name every feature of the spec"):
        Manifest.model_validate(data)


def test_a_manifest_without_segments_keeps_its_version_and_bytes(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    assert "segments" not in data  # as every manifest written before the field existed
    explicit = Manifest.model_validate({**data, "segments": []})
    assert explicit.content_version(bundle.onnx_bytes) == bundle.version
    assert explicit.to_json() == bundle.manifest.to_json()


def test_segments_enter_the_version_and_round_trip(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    segment = {"feature": "mean_radius", "kind": "numeric", "edges": [12.0, 15.0]}
    segmented = Manifest.model_validate({**data, "segments": [segment]}).with_version(bundle.onnx_bytes)
    assert segmented.version != bundle.version
    assert Manifest.model_validate_json(segmented.to_json()) == segmented
    assert json.loads(segmented.to_json())["segments"] == [{**segment, "values": []}]


@pytest.mark.parametrize(
    ("segments", "message"),
    [([{"feature": "postcode", "kind": "category", "values": ["a"]}], r"segments name features the spec does not have"),
     ([{"feature": "mean_radius", "kind": "numeric", "edges": [2.0, 1.0]}], r"must increase strictly"),
     ([{"feature": "mean_radius", "kind": "numeric"}], r"needs edges"),
     ([{"feature": "mean_radius", "kind": "numeric", "edges": [1.0]}] * 2, r"name a feature twice")],
    ids=["unknown feature", "decreasing edges", "no edges", "twice"],
)  # fmt: skip
def test_segments_are_validated(bundle: Bundle, segments: list[dict[str, object]], message: str) -> None:
    data = json.loads(bundle.manifest.to_json())
    with pytest.raises(ValidationError, match=message):
        Manifest.model_validate({**data, "segments": segments})


def test_a_segment_feature_cannot_be_excluded_from_capture(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    segment = {"feature": "mean_radius", "kind": "numeric", "edges": [12.0]}
    with pytest.raises(ValidationError, match="cannot be excluded from capture"):
        Manifest.model_validate({**data, "segments": [segment], "capture_exclude": ["mean_radius"]})


# The calibration (estimated quality without labels)


def test_the_calibration_round_trips_and_is_left_out_of_the_version(bundle: Bundle) -> None:
    calibration = bundle.manifest.calibration
    assert calibration is not None and [c.name for c in calibration.classes] == [(bundle.manifest.classes or ())[1]]
    assert calibration.rows == bundle.manifest.parity.rows  # fitted on the holdout
    assert 0 <= calibration.calibration_error <= 1

    again = Manifest.model_validate_json(bundle.manifest.to_json())
    without = bundle.manifest.model_copy(update={"calibration": None})

    assert again == bundle.manifest and again.calibration == calibration
    assert without.content_version(bundle.onnx_bytes) == bundle.version


def test_a_manifest_without_calibration_loads_and_serialises_as_before_the_field(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    del data["calibration"]

    old = Manifest.model_validate(data)

    assert old.calibration is None
    assert "calibration" not in json.loads(old.to_json())


def test_a_calibration_must_name_classes_of_the_model(bundle: Bundle) -> None:
    data = json.loads(bundle.manifest.to_json())
    data["calibration"]["classes"][0]["name"] = "unknown"

    with pytest.raises(ValidationError, match="the calibration names classes the model does not have"):
        Manifest.model_validate(data)
