"""The HTML drift report: a drifted feature the model relies on reads differently from one it hardly uses."""

from __future__ import annotations

import numpy as np

from functions.core.drift import DriftPolicy, DriftReport, count_columns, drift_report
from functions.monitor.report_html import render_html
from functions.training.train import Bundle, load_recipe, load_table


def _shifted_report(bundle: Bundle, *, scale: float, names: tuple[str, ...]) -> DriftReport:
    columns, _ = load_table(load_recipe())
    shifted = {name: np.asarray(values, dtype=float) * (scale if name in names else 1.0)
               for name, values in columns.items()}  # fmt: skip
    predictions = ["benign"] * len(next(iter(columns.values())))
    manifest = bundle.manifest
    return drift_report(manifest, count_columns(manifest, shifted, predictions), DriftPolicy(), with_prediction=False)


def test_drifted_features_read_as_important_or_not(bundle: Bundle) -> None:
    report_of = bundle.manifest.feature_report
    assert report_of is not None
    ranked = sorted(report_of.features, key=lambda f: f.rank)
    top, bottom = ranked[0], ranked[-1]

    html = render_html(_shifted_report(bundle, scale=1.6, names=(top.name, bottom.name)))

    assert f"of an important feature: importance {top.importance:.4f}" in html
    assert '<span class="minor">drift (' in html
    assert f"of an unimportant feature: importance {bottom.importance:.4f}" in html
    assert "<th>importance</th>" in html and "Drift of an unimportant feature moves few answers" in html


def test_a_manifest_without_a_report_shows_no_importance(bundle: Bundle) -> None:
    older = Bundle(bundle.manifest.model_copy(update={"feature_report": None}), bundle.onnx_bytes)

    html = render_html(_shifted_report(older, scale=1.6, names=("mean_radius",)))

    assert '<span class="drift">drift (' in html
    assert "important feature" not in html and "moves few answers" not in html
