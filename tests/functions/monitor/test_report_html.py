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


def test_estimated_quality_is_drawn_beside_realized_quality_over_time(bundle: Bundle) -> None:
    from datetime import UTC, datetime, timedelta

    from functions.core.estimated_quality import NOT_ESTIMATED_REGRESSION, EstimatedQuality, MetricEstimate, with_point

    start = datetime(2026, 1, 5, tzinfo=UTC)
    estimate = MetricEstimate(value=0.95, lower=0.93, upper=0.97, std=0.01)
    found = EstimatedQuality(model_version="v1", metric="roc_auc", rows=500, metrics={"roc_auc": estimate},
                             calibration_error=0.02, note="blind to concept drift")  # fmt: skip
    history: list = []
    for hour, realized in enumerate((None, 0.94, 0.6)):
        history = with_point(history, found, realized, start + timedelta(hours=hour))
    report = _shifted_report(bundle, scale=1.0, names=())

    html = render_html(report, estimated=found, history=history)
    regression = render_html(
        report, estimated=found.model_copy(update={"metrics": {}, "note": NOT_ESTIMATED_REGRESSION})
    )

    assert "Estimated quality without labels" in html and "0.930 to 0.970" in html and "blind to concept drift" in html
    assert html.count("<polyline") == 2 and html.count("<circle") == 2  # estimated and realized; two labelled cycles
    assert "realized 0.600, estimated 0.950" in html
    assert "not estimated for regression" in regression and "<polyline" not in regression
