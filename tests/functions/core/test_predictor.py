"""Scoring with ONNX Runtime, and plan B when the model cannot answer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from functions.core.errors import BundleError, ModelUnavailable
from functions.core.manifest import FallbackAnswer
from functions.core.predictor import (
    REASON_NON_FINITE_OUTPUT,
    REASON_RUNTIME_ERROR,
    Predictor,
    fallback_predictions,
)
from functions.training.train import Bundle, load_recipe, load_table

KEYS = {"label", "probabilities", "value", "imputed", "out_of_range", "outlier", "fallback"}


def example_rows(count: int) -> list[dict[str, float]]:
    columns, _ = load_table(load_recipe())
    return [{name: float(values[i]) for name, values in columns.items()} for i in range(count)]


@pytest.fixture(scope="module")
def predictor(bundle: Bundle) -> Predictor:
    return Predictor(bundle.manifest, bundle.onnx_bytes)


class FailingSession:
    def run(self, outputs: Any, feed: Any) -> Any:
        raise RuntimeError("onnxruntime exploded")


class NaNSession:
    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = next(iter(feed.values())).shape[0]
        return [np.array(["benign"] * rows), np.full((rows, 2), np.nan, dtype=np.float32)]


def test_predictions_carry_labels_and_probabilities_over_the_classes(predictor: Predictor, bundle: Bundle) -> None:
    classes = bundle.manifest.classes
    assert classes == ("benign", "malignant")

    predictions = predictor.score(predictor.encode(example_rows(20)))

    assert len(predictions) == 20
    for prediction in predictions:
        assert set(prediction) == KEYS
        assert prediction["label"] in classes
        assert list(prediction["probabilities"]) == list(classes)
        assert math.isclose(sum(prediction["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
        assert prediction["value"] is None
        assert prediction["fallback"] is None
        assert prediction["imputed"] == [] and prediction["out_of_range"] == []


def test_labels_agree_with_the_training_data_mostly(predictor: Predictor) -> None:
    _, target = load_table(load_recipe())

    predictions = predictor.score(predictor.encode(example_rows(100)))

    assert np.mean([p["label"] == t for p, t in zip(predictions, target[:100], strict=True)]) > 0.9


def test_predictions_report_imputed_and_out_of_range_features(predictor: Predictor, bundle: Bundle) -> None:
    row = example_rows(1)[0]
    del row["worst_area"]  # optional
    first = bundle.manifest.feature_spec.features[0]
    assert first.name == "mean_radius" and first.train_max is not None
    row["mean_radius"] = first.train_max + 1.0

    (prediction,) = predictor.score(predictor.encode([row]))

    assert prediction["imputed"] == ["worst_area"]
    assert prediction["out_of_range"] == ["mean_radius"]
    assert prediction["fallback"] is None


def test_one_row_alone_is_encoded_as_inside_a_batch(predictor: Predictor) -> None:
    rows = example_rows(50)
    batch = predictor.encode(rows)

    for index, row in enumerate(rows):
        assert predictor.encode([row]).matrix.tobytes() == batch.matrix[index : index + 1].tobytes()


def test_one_row_alone_is_answered_exactly_as_inside_a_batch(predictor: Predictor) -> None:
    # DESIGN "Repeatable": equal inputs give equal outputs, whatever else is in the request.
    rows = example_rows(50)
    in_batch = predictor.score(predictor.encode(rows))

    alone = [predictor.score(predictor.encode([row]))[0] for row in rows]

    differing = [i for i in range(len(rows)) if alone[i] != in_batch[i]]
    assert differing == [], f"rows answered differently alone and in a batch of 50: {differing}"


def test_garbage_onnx_bytes_are_a_bundle_error(bundle: Bundle) -> None:
    manifest = bundle.manifest.with_version(b"not an onnx graph")

    with pytest.raises(BundleError, match=f"bundle {manifest.version} has an unreadable ONNX graph"):
        Predictor(manifest, b"not an onnx graph")


def test_a_manifest_that_does_not_match_its_bytes_is_a_bundle_error(bundle: Bundle) -> None:
    stale = bundle.manifest.model_copy(update={"metrics": {**bundle.manifest.metrics, "roc_auc": 0.5}})

    with pytest.raises(BundleError, match=f"bundle {bundle.version} does not match its content hash"):
        Predictor(stale, bundle.onnx_bytes)
    with pytest.raises(BundleError, match="does not match its content hash"):
        Predictor(bundle.manifest, bundle.onnx_bytes + b"\x00")


def test_a_runtime_error_becomes_model_unavailable(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    batch = predictor.encode(example_rows(3))
    monkeypatch.setattr(predictor, "_session", FailingSession())

    with pytest.raises(ModelUnavailable, match=f"^{REASON_RUNTIME_ERROR}$") as caught:
        predictor.score(batch)

    assert isinstance(caught.value.__cause__, RuntimeError)


def test_non_finite_output_becomes_model_unavailable(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    batch = predictor.encode(example_rows(3))
    monkeypatch.setattr(predictor, "_session", NaNSession())

    with pytest.raises(ModelUnavailable, match=f"^{REASON_NON_FINITE_OUTPUT}$"):
        predictor.score(batch)


def test_fallback_gives_the_declared_answer_and_keeps_the_batch_flags(predictor: Predictor, bundle: Bundle) -> None:
    rows = example_rows(3)
    del rows[1]["worst_area"]
    rows[2]["mean_radius"] = 40.0
    batch = predictor.encode(rows)
    answer = bundle.manifest.fallback

    predictions = fallback_predictions(answer, REASON_RUNTIME_ERROR, 3, batch)

    assert len(predictions) == 3
    for prediction in predictions:
        assert set(prediction) == KEYS
        assert prediction["label"] == answer.label == "benign"
        assert prediction["probabilities"] == answer.probabilities
        assert prediction["value"] is None
        assert prediction["fallback"] == REASON_RUNTIME_ERROR
    assert [p["imputed"] for p in predictions] == [[], ["worst_area"], []]
    assert [p["out_of_range"] for p in predictions] == [[], [], ["mean_radius"]]


def test_fallback_without_an_answer_or_a_batch_is_empty_and_flagged() -> None:
    predictions = fallback_predictions(None, "no_live_model", 2)

    assert (
        predictions
        == [
            {
                "label": None,
                "probabilities": None,
                "value": None,
                "imputed": [],
                "out_of_range": [],
                "outlier": None,
                "fallback": "no_live_model",
            }
        ]
        * 2
    )


@pytest.mark.parametrize(("value", "expected"), [(12.5, 12.5), (float("nan"), None), (float("inf"), None)])
def test_fallback_value_is_served_only_when_finite(value: float, expected: float | None) -> None:
    (prediction,) = fallback_predictions(FallbackAnswer(value=value), "model_unavailable", 1)

    assert prediction["value"] == expected
    assert prediction["fallback"] == "model_unavailable"


class _BatchSensitiveSession:
    """Stands in for a graph whose float32 results drift with the batch size (as kernels can)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.get_outputs = real.get_outputs
        self.get_inputs = real.get_inputs

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        labels, probabilities, *rest = self._real.run(outputs, feeds)
        rows = next(iter(feeds.values())).shape[0]
        return [labels, probabilities + np.float32(1e-7) * (rows > 8), *rest]


def test_probe_rows_are_valid_input_for_the_spec(bundle: Bundle) -> None:
    from functions.core.predictor import probe_rows

    probe, texts = probe_rows(bundle.manifest.feature_spec)
    features = bundle.manifest.feature_spec.features
    assert probe.dtype == np.float64 and probe.shape == (19, len(features)) and texts == {}
    for column, feature in enumerate(features):
        assert probe[:, column].min() >= np.float32(feature.train_min) - 1e-3
        assert probe[:, column].max() <= np.float32(feature.train_max) + 1e-3


def test_a_batch_sensitive_model_is_scored_row_by_row(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    real_session = ort.InferenceSession
    monkeypatch.setattr(
        ort, "InferenceSession", lambda *args, **kwargs: _BatchSensitiveSession(real_session(*args, **kwargs))
    )
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    assert predictor.batch_invariant is False
    columns, _ = load_table(load_recipe())
    rows = [{name: float(values[i]) for name, values in columns.items()} for i in range(20)]
    together = predictor.score(predictor.encode(rows))
    assert [predictor.score(predictor.encode([row]))[0] for row in rows] == together


def test_the_example_model_is_batch_invariant_on_this_cpu(predictor: Predictor) -> None:
    assert predictor.batch_invariant is True


def test_a_bundle_made_before_per_feature_inputs_is_still_served(bundle: Bundle) -> None:
    """Registered bundles whose graph takes one float32 matrix named 'input' keep answering, unchanged."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from functions.core.features import encode_columns
    from functions.training.train import load_table

    columns, target = load_table(load_recipe())
    spec = bundle.manifest.feature_spec
    matrix = encode_columns(spec, columns).astype(np.float32)
    pipeline = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=5000))]).fit(matrix, target)
    graph = to_onnx(
        pipeline, initial_types=[("input", FloatTensorType([None, len(spec.features)]))], options={"zipmap": False}
    ).SerializeToString()
    old = bundle.manifest.model_copy(update={"version": ""}).with_version(graph)

    predictor = Predictor(old, graph)
    answers = predictor.score(predictor.encode(example_rows(10)))

    expected = pipeline.predict_proba(matrix[:10])
    served = np.array([[a["probabilities"][c] for c in pipeline.classes_] for a in answers])
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert predictor.batch_invariant is True


def test_a_bundle_is_checked_against_the_full_digest_not_only_its_version(bundle: Bundle) -> None:
    full = bundle.manifest.content_digest(bundle.onnx_bytes)
    assert len(full) == 64 and full.startswith(bundle.version)
    assert Predictor(bundle.manifest, bundle.onnx_bytes, digest=full).version == bundle.version
    # What a forged bundle whose 16-character version collides would look like: the full digest differs.
    forged = full[: len(bundle.version)] + ("0" if full[-1] != "0" else "1") * (64 - len(bundle.version))
    with pytest.raises(BundleError, match="full digest recorded at its promotion"):
        Predictor(bundle.manifest, bundle.onnx_bytes, digest=forged)
