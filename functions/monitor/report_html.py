"""The drift report as one self-contained HTML page: inline SVG plots, no scripts, no server."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from functions.core.drift import DriftReport, FeatureDrift, OutlierFigures
from functions.core.estimated_quality import EstimatedQuality, QualityPoint
from functions.core.feedback import LabelCounts
from functions.core.rollout import RolloutFigures
from functions.core.segments import SegmentReport

_WIDTH, _HEIGHT, _PAD = 360, 120, 4
_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.drift{color:#b00;font-weight:bold}.minor{color:#b60}.ok{color:#070}
.feature{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _bars(feature: FeatureDrift) -> str:
    """Training (grey) and live (blue) shares per bin, side by side."""
    bins = len(feature.baseline_proportions)
    top = max([*feature.baseline_proportions, *feature.live_proportions, 1e-9])
    slot = (_WIDTH - 2 * _PAD) / max(bins, 1)
    bar = slot * 0.4
    parts = [f'<svg width="{_WIDTH}" height="{_HEIGHT + 16}" role="img" aria-label="{escape(feature.name)}">']
    for i, (train, live, label) in enumerate(
        zip(feature.baseline_proportions, feature.live_proportions, feature.bin_labels, strict=True)
    ):
        x = _PAD + i * slot
        for offset, share, colour, who in ((0, train, "#999", "training"), (bar, live, "#2a6fdb", "live")):
            h = (_HEIGHT - _PAD) * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{_HEIGHT - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {who} {share:.3f}</title></rect>"
            )
    parts.append(f'<text x="{_PAD}" y="{_HEIGHT + 13}" font-size="10">{escape(feature.bin_labels[0])}</text>')
    parts.append(
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT + 13}" font-size="10" text-anchor="end">'
        f"{escape(feature.bin_labels[-1])}</text></svg>"
    )
    return "".join(parts)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _verdict(feature: FeatureDrift) -> str:
    if feature.drift is None:
        return "insufficient data"
    if not feature.drift:
        return '<span class="ok">ok</span>'
    reasons = ", ".join(feature.reasons)
    if feature.importance is None:
        return f'<span class="drift">drift ({reasons})</span>'
    # A feature the model hardly uses moves few answers when it drifts: it reads as a minor finding.
    kind, css = ("important", "drift") if feature.important else ("unimportant", "minor")
    return f'<span class="{css}">drift ({reasons}) of an {kind} feature: importance {feature.importance:.4f}</span>'


def _importance(feature: FeatureDrift) -> str:
    if feature.importance is None:
        return ""
    return f"{feature.importance:.4f} ({'important' if feature.important else 'unimportant'})"


def _rollout_section(rollout: RolloutFigures | None) -> str:
    """The candidate beside live in the window, when a rollout is under way."""
    if rollout is None:
        return ""
    rows = "".join(
        f"<tr><td>{escape(role)}</td><td>{escape(v.version)}</td><td>{v.requests}</td><td>{v.rows}</td>"
        f"<td>{v.fallback_share:.3f}</td><td>{_fmt(v.latency_p50_ms)}</td><td>{_fmt(v.latency_p99_ms)}</td>"
        f"<td>{_fmt(v.quality)}</td><td>{v.labelled_rows}</td></tr>"
        for role, v in (("live", rollout.live), ("candidate", rollout.candidate))
    )
    shadow = rollout.shadow
    compared = (
        f"<p>Shadow: {shadow.rows} rows scored by both; label agreement {_fmt(shadow.label_agreement)}, "
        f"mean difference {_fmt(shadow.mean_abs_difference)}, p99 difference {_fmt(shadow.p99_abs_difference)}; "
        f"candidate p99 latency {_fmt(shadow.latency_p99_ms)} ms (live {_fmt(shadow.live_latency_p99_ms)} ms); "
        f"{shadow.errors} failed requests; {rollout.metric} on the same {shadow.labelled_rows} labelled rows: "
        f"candidate {_fmt(shadow.quality)}, live {_fmt(shadow.live_quality)}.</p>"
        if shadow
        else "<p>No shadowed requests in the window.</p>"
    )
    drift = (
        f"<p>The candidate's own drift: share {_fmt(rollout.candidate_drift_share)} "
        f"({escape(', '.join(rollout.candidate_drifted_features)) or 'no feature'} drifted).</p>"
        if rollout.candidate_drift_share is not None
        else ""
    )
    return (
        "<h2>Rollout: the candidate beside live</h2><table><tr><th>role</th><th>version</th><th>requests</th>"
        "<th>rows</th><th>plan B share</th><th>p50 ms</th><th>p99 ms</th><th>quality</th><th>labelled rows</th>"
        f"</tr>{rows}</table>{compared}{drift}"
    )


def _outliers(figures: OutlierFigures | None) -> str:
    if figures is None:
        return ""
    css = "drift" if figures.drift else "ok"
    summary = escape(figures.summary())
    return f'<p>Outliers (rows unlike the training data as a whole): <span class="{css}">{summary}</span></p>'


def _importance_note(report: DriftReport) -> str:
    if all(f.importance is None for f in report.features):
        return ""
    return (
        "<p>Importance: how much the model's holdout metric suffered at training when the feature's values were "
        "shuffled (see <code>slipway features</code>). Drift of an unimportant feature moves few answers.</p>"
    )


_GAP_TITLES = {
    "demographic_parity": "demographic parity (positive rate)",
    "true_positive_rate": "true-positive rate",
    "false_positive_rate": "false-positive rate",
    "mean_prediction": "mean prediction",
    "mae": "MAE",
}


def _rates(per_class: dict[str, float] | dict[str, float | None], positive: str | None) -> str:
    """The positive class's rate (binary), or every class's (multiclass, one-vs-rest)."""
    if positive is not None:
        return _fmt(per_class.get(positive))
    return ", ".join(f"{escape(c)} {_fmt(v)}" for c, v in per_class.items())


def _segments_section(segments: SegmentReport | None) -> str:
    """Per segment feature: each segment's rows, answers and errors, and the gaps between them."""
    if segments is None:
        return ""
    classification = segments.task == "classification"
    positive = f" ({escape(segments.positive_class)})" if segments.positive_class else ""
    header = (
        f"<th>segment</th><th>rows</th><th>{'positive' if positive else 'prediction'} rate{positive}</th>"
        "<th>labelled</th><th>metric</th>"
        "<th>TPR</th><th>FPR</th><th>status</th>"
        if classification
        else "<th>segment</th><th>rows</th><th>mean prediction</th><th>labelled</th><th>metric</th><th>MAE</th>"
        "<th>status</th>"
    )
    parts = [
        "<h2>Bias across segments</h2>"
        f"<p>Segments with fewer than {segments.min_rows} rows ({segments.min_labelled} labelled rows for the error "
        f"rates) are insufficient and take no part in the gaps; a gap above {segments.gap_alarm:g} is flagged. "
        "Rates are over the window, errors over the quality window's labelled rows. These are monitoring "
        "signals, not a fairness certificate.</p>"
    ]
    for feature in segments.features:
        rows = []
        for s in feature.segments:
            status = "not a declared segment" if not s.declared else (
                "ok" if s.sufficient and s.labelled_sufficient else
                "insufficient rows" if not s.sufficient else "insufficient labels")  # fmt: skip
            if classification:
                figures = (
                    f"<td>{_rates(s.prediction_rates, segments.positive_class)}</td><td>{s.labelled_rows}</td>"
                    f"<td>{_fmt(s.metric)}</td><td>{_rates(s.true_positive_rates, segments.positive_class)}</td>"
                    f"<td>{_rates(s.false_positive_rates, segments.positive_class)}</td>"
                )
            else:
                figures = (
                    f"<td>{_fmt(s.mean_prediction)}</td><td>{s.labelled_rows}</td><td>{_fmt(s.metric)}</td>"
                    f"<td>{_fmt(s.mae)}</td>"
                )
            rows.append(f"<tr><td>{escape(s.segment)}</td><td>{s.rows}</td>{figures}<td>{status}</td></tr>")
        gaps = "; ".join(
            f"{_GAP_TITLES[g.name]}"
            + (f" of {escape(g.positive_class)}" if g.positive_class and not segments.positive_class else "")
            + (
                f" {g.value:.3f} ({escape(g.highest or '')} vs {escape(g.lowest or '')})"
                if g.value is not None
                else " insufficient data"
            )
            for g in feature.gaps
        )
        verdict = {"gap": '<span class="drift">gap</span>', "ok": '<span class="ok">ok</span>'}.get(
            feature.verdict, "insufficient data"
        )
        parts.append(
            f"<h3>{escape(feature.feature)}: {verdict}</h3><table><tr>{header}</tr>{''.join(rows)}</table>"
            f"<p>Gaps: {gaps}.</p>"
        )
    return "".join(parts)


def _series(history: Sequence[QualityPoint]) -> str:
    """The gate metric over the last cycles: estimated (blue, its band shaded) and realized from labels (black)."""
    values = [v for p in history for v in (p.estimated, p.lower, p.upper, p.realized) if v is not None]
    if len(history) < 2 or not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (_WIDTH * 2 - 2 * _PAD) / (len(history) - 1)

    def x(i: int) -> float:
        return _PAD + i * step

    def y(v: float) -> float:
        return _PAD + (_HEIGHT - 2 * _PAD) * (high - v) / span

    def line(points: list[tuple[int, float | None]], colour: str) -> str:
        runs = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points if v is not None)
        return f'<polyline points="{runs}" fill="none" stroke="{colour}" stroke-width="1.5"/>' if runs else ""

    banded = [(i, p) for i, p in enumerate(history) if p.lower is not None and p.upper is not None]
    band = " ".join(
        [f"{x(i):.1f},{y(p.upper):.1f}" for i, p in banded if p.upper is not None]
        + [f"{x(i):.1f},{y(p.lower):.1f}" for i, p in reversed(banded) if p.lower is not None]
    )
    marks = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(p.realized):.1f}" r="2.5" fill="#222"><title>{p.end:%Y-%m-%d %H:%M}: '
        f"realized {p.realized:.3f}, estimated {_fmt(p.estimated)}</title></circle>"
        for i, p in enumerate(history)
        if p.realized is not None
    )
    return (
        f'<svg width="{_WIDTH * 2}" height="{_HEIGHT + 16}" role="img" aria-label="estimated and realized quality">'
        + (f'<polygon points="{band}" fill="#2a6fdb" fill-opacity="0.15"/>' if band else "")
        + line([(i, p.estimated) for i, p in enumerate(history)], "#2a6fdb")
        + line([(i, p.realized) for i, p in enumerate(history)], "#222")
        + marks
        + f'<text x="{_PAD}" y="{_HEIGHT + 13}" font-size="10">{history[0].end:%Y-%m-%d %H:%M} '
        f"({high:.3f} top, {low:.3f} bottom)</text>"
        f'<text x="{_WIDTH * 2 - _PAD}" y="{_HEIGHT + 13}" font-size="10" text-anchor="end">'
        f"{history[-1].end:%Y-%m-%d %H:%M}</text></svg>"
    )


def _estimated_section(estimated: EstimatedQuality | None, history: Sequence[QualityPoint]) -> str:
    """The quality estimated without labels: each metric with its band, what it cannot see, and the series."""
    if estimated is None:
        return ""
    head = "<h2>Estimated quality without labels</h2>"
    if not estimated.metrics:
        return f"{head}<p>{escape(estimated.note)}.</p>"
    rows = "".join(
        f"<tr><td>{escape(name)}{' (gate metric)' if name == estimated.metric else ''}</td><td>{m.value:.3f}</td>"
        f"<td>{m.lower:.3f} to {m.upper:.3f}</td></tr>"
        for name, m in estimated.metrics.items()
    )
    compared = ""
    if estimated.realized is not None and estimated.labelled_estimate is not None:
        css = "drift" if estimated.disagrees else "ok"
        words = escape(estimated.warning) if estimated.warning else "they agree"
        band = estimated.labelled_estimate
        compared = (
            f"<p>On the quality window's {estimated.labelled_rows} labelled rows: realized {estimated.metric} "
            f"{estimated.realized:.3f}, estimated {band.value:.3f} (band {band.lower:.3f} to {band.upper:.3f}, widened "
            f'by the calibration error {_fmt(estimated.calibration_error)}): <span class="{css}">{words}</span>.</p>'
        )
    legend = (
        '<p class="legend"><span style="background:#2a6fdb"></span>estimated (band shaded)'
        '<span style="background:#222"></span>realized from labels</p>'
        if len(history) >= 2
        else ""
    )
    return (
        f"{head}<p>Over the window's {estimated.rows} answered rows, from the model's probabilities calibrated on "
        f"the holdout (calibration error {_fmt(estimated.calibration_error)}); the band is where the realized "
        "figure should fall through sampling alone. Note: "
        f"{escape(estimated.note)}.</p><table><tr><th>metric</th><th>estimated</th><th>band</th></tr>{rows}</table>"
        f"{compared}{legend}{_series(history)}"
    )


def render_html(
    report: DriftReport,
    quality: Sequence[Any] = (),
    rollout: RolloutFigures | None = None,
    segments: SegmentReport | None = None,
    labels: LabelCounts | None = None,
    *,
    estimated: EstimatedQuality | None = None,
    history: Sequence[QualityPoint] = (),
) -> str:
    """The report page of one window."""
    title = f"Drift report: model {report.model_version}"
    verdict_class = "drift" if report.drift_detected else "ok"
    rows = []
    everything = [*report.features, report.prediction]
    for f in everything:
        rows.append(
            f"<tr><td>{escape(f.name)}</td><td>{f.kind}</td><td>{_fmt(f.psi)}</td><td>{_fmt(f.js)}</td>"
            f"<td>{_fmt(f.ks)}</td><td>{_fmt(f.linf)}</td><td>{_fmt(f.unseen_share)}</td>"
            f"<td>{f.missing_rate:.3f}</td><td>{f.out_of_range:.3f}</td><td>{_importance(f)}</td>"
            f"<td>{_verdict(f)}</td></tr>"
        )
    plots = [
        f'<div class="feature"><h3>{escape(f.name)}</h3>{_bars(f)}<div>{_verdict(f)}</div></div>' for f in everything
    ]
    quality_rows = "".join(
        f"<tr><td>{escape(q.model_version)}</td><td>{escape(q.metric)}</td><td>{_fmt(q.value)}</td>"
        f"<td>{_fmt(q.holdout)}</td><td>{q.labelled_rows}</td></tr>"
        for q in quality
    )
    quality_table = (
        "<h2>Model quality from feedback</h2><table><tr><th>model version</th><th>metric</th><th>live</th>"
        f"<th>holdout</th><th>labelled rows</th></tr>{quality_rows}</table>"
        if quality
        else "<h2>Model quality from feedback</h2><p>No labelled rows in the quality window.</p>"
    )
    if labels is not None and labels.labels:
        quality_table += (
            f"<p>Labels of the quality window: {labels.labels} rows labelled, {labels.matched} matched to their "
            f"prediction ({labels.late} late), {labels.duplicates} replaced by a later label, {labels.unknown} not "
            "matched to any captured row yet (kept: joined once their capture arrives).</p>"
        )
    drifted = ": " + escape(", ".join(report.drifted_features)) if report.drifted_features else ""
    excluded = (
        f"<p>Excluded from capture by the recipe (CAPTURE_EXCLUDE), so no drift is computed for: "
        f"{escape(', '.join(report.excluded_features))}.</p>"
        if report.excluded_features
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_STYLE}</style></head>
<body><h1>{escape(title)}</h1>
<p>Window {report.window_start} to {report.window_end}: {report.rows} rows (minimum {report.min_rows}).
Verdict: <span class="{verdict_class}">{report.verdict.replace("_", " ")}</span>;
{len(report.drifted_features)} of {len(report.features)} features drifted
(share {report.drift_share:.3f}){drifted}.</p>
{excluded}
{_outliers(report.outliers)}
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>JS distance</th><th>KS</th><th>L&infin;</th>
<th>unseen</th><th>missing</th><th>out of range</th><th>importance</th><th>verdict</th></tr>{"".join(rows)}</table>
{_importance_note(report)}
{quality_table}
{_estimated_section(estimated, history)}
{_segments_section(segments)}
{_rollout_section(rollout)}
<h2>Distributions</h2><p class="legend"><span style="background:#999"></span>training
<span style="background:#2a6fdb"></span>live (share of present values per frozen bin)</p>
{"".join(plots)}
</body></html>
"""
