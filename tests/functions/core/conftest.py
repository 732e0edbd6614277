"""The registry's fixtures: versions to promote and roll out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.core.manifest import FallbackAnswer, Manifest
from functions.core.registry import Registry
from functions.training.train import Bundle

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def variant(bundle: Bundle, score: float, label: str = "benign") -> Manifest:
    """A distinct, correctly stamped version over the same graph."""
    fallback = FallbackAnswer(label=label, probabilities={"benign": 0.5, "malignant": 0.5})
    metrics = {**bundle.manifest.metrics, "roc_auc": score}
    return bundle.manifest.model_copy(update={"metrics": metrics, "fallback": fallback}).with_version(bundle.onnx_bytes)


@pytest.fixture
def three(registry: Registry, bundle: Bundle) -> list[str]:
    """Three registered versions, A, B and C."""
    versions = []
    for score, label in ((0.91, "benign"), (0.92, "malignant"), (0.93, "benign")):
        manifest = variant(bundle, score, label)
        assert registry.register(manifest, bundle.onnx_bytes)
        versions.append(manifest.version)
    assert len(set(versions)) == 3
    return versions
