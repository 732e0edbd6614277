"""`slipway drift`, `slipway report` and `slipway monitor`: the drift monitor for people."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from functions.core.drift import DriftReport, FeatureDrift, count_columns, drift_report
from functions.core.errors import InvalidRequest
from functions.core.estimated_quality import EstimatedQuality, answered_rows, estimate_quality
from functions.core.manifest import Manifest
from functions.core.rollout import RolloutFigures
from functions.core.segments import SegmentReport


def _live_bundle(stage: str) -> tuple[Any, Manifest, bytes]:
    from slipway.target import resolve

    target = resolve(stage)
    registry = target.registry()
    version = registry.live().version
    if version is None:
        raise ValueError("no live model: train and promote one first (`slipway train --promote`)")
    manifest, graph = registry.store.get_bundle(version)
    return target, manifest, graph


def read_csv(path: Path, manifest: Manifest) -> tuple[dict[str, list[Any]], list[Any]]:
    """Feature columns of a CSV (empty cells are missing) and its prediction column (label/value), if any."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    names = manifest.feature_spec.names
    if rows and not set(names) & set(rows[0]):
        raise ValueError(f"{path} has none of the model's features as a column header: expected e.g. {names[:3]}")
    columns: dict[str, list[Any]] = {}
    for feature in manifest.feature_spec.features:
        raw = [row.get(feature.name) for row in rows]
        if feature.type.value in ("number", "integer"):
            columns[feature.name] = [_number(v) for v in raw]
        else:
            columns[feature.name] = [v if v not in (None, "") else None for v in raw]
    column = "label" if manifest.task == "classification" else "value"
    predictions = [row.get(column) or None for row in rows]
    return columns, predictions


def _number(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def csv_report(path: Path, manifest: Manifest, policy: Any) -> DriftReport:
    columns, predictions = read_csv(path, manifest)
    with_prediction = any(p is not None for p in predictions)
    counts = count_columns(manifest, columns, predictions)
    return drift_report(manifest, counts, policy, with_prediction=with_prediction)


def csv_estimated_quality(path: Path, manifest: Manifest, graph: bytes) -> EstimatedQuality:
    """The model's quality on the CSV's rows estimated without labels: the rows scored by the live graph."""
    if manifest.task != "classification":
        return estimate_quality(manifest, np.empty((0, 0)))
    from functions.core.predictor import Predictor

    columns, _ = read_csv(path, manifest)
    rows = len(next(iter(columns.values()), []))
    predictor = Predictor(manifest, graph)
    try:
        answers = predictor.score(predictor.encode([{n: v[i] for n, v in columns.items()} for i in range(rows)]))
    except InvalidRequest as exc:
        found = estimate_quality(manifest, np.empty((0, len(manifest.classes or ()))))
        return found.model_copy(update={"note": f"not estimated: the model refuses the file's rows: {exc.message}"})
    classes = manifest.classes or ()
    probabilities = {c: [(a["probabilities"] or {}).get(c) for a in answers] for c in classes}
    answered = [a["fallback"] is None for a in answers]
    return estimate_quality(
        manifest, *answered_rows(probabilities, [a["label"] for a in answers], classes, len(answers), answered)
    )


def estimated_json(estimated: EstimatedQuality) -> dict[str, Any]:
    """The `--json` shape of estimated quality: each metric's value, its band, and what it cannot see."""
    return {
        "estimated_quality": {name: m.value for name, m in estimated.metrics.items()},
        "estimated_quality_band": {name: {"lower": m.lower, "upper": m.upper} for name, m in estimated.metrics.items()},
        "estimated_quality_metric": estimated.metric,
        "estimated_quality_rows": estimated.rows,
        "estimated_quality_note": estimated.note,
    }


def print_estimated(estimated: EstimatedQuality) -> None:
    if not estimated.metrics:
        print(f"estimated quality: {estimated.note}")
        return
    figures = ", ".join(
        f"{name} {m.value:.3f} ({m.lower:.3f} to {m.upper:.3f})"
        + (" [gate metric]" if name == estimated.metric else "")
        for name, m in estimated.metrics.items()
    )
    print(f"estimated quality without labels over {estimated.rows} rows: {figures}")
    print(f"  note: {estimated.note}")


def report_json(report: DriftReport) -> dict[str, Any]:
    """The `--json` shape: per feature psi, js and ks or linf and unseen_share, missing_rate, out_of_range, drift."""
    features = {}
    for feature in report.features:
        stats: dict[str, float | None] = {"psi": feature.psi, "js": feature.js}
        if feature.kind == "numeric":
            stats["ks"] = feature.ks
        else:
            stats.update(linf=feature.linf, unseen_share=feature.unseen_share)
        features[feature.name] = {**stats, "missing_rate": feature.missing_rate, "out_of_range": feature.out_of_range,
                                  "drift": feature.drift, "reasons": feature.reasons,
                                  "importance": feature.importance, "important": feature.important}  # fmt: skip
    return {
        "model_version": report.model_version,
        "rows": report.rows,
        "verdict": report.verdict,
        "drift_share": report.drift_share,
        "drift_detected": report.drift_detected,
        "drifted_features": report.drifted_features,
        "features": features,
        "excluded_features": report.excluded_features,
        "outliers": report.outliers.model_dump(mode="json") if report.outliers else None,
    }


def print_table(report: DriftReport) -> None:
    def fmt(value: float | None) -> str:
        return f"{value:8.3f}" if value is not None else f"{'':8}"

    def importance(value: float | None) -> str:
        return f"{value:8.4f}" if value is not None else f"{'':8}"

    print(f"{'feature':26}{'PSI':>8}{'JS':>8}{'KS':>8}{'Linf':>8}{'missing':>8}{'outside':>8}{'import.':>8}  verdict")
    for f in (*report.features, report.prediction):
        print(f"{f.name[:25]:26}{fmt(f.psi)}{fmt(f.js)}{fmt(f.ks)}{fmt(f.linf)}"
              f"{f.missing_rate:8.3f}{f.out_of_range:8.3f}{importance(f.importance)}  {verdict_text(f)}")  # fmt: skip
    for name in report.excluded_features:
        print(f"{name[:25]:26}{'':56}  excluded from capture (CAPTURE_EXCLUDE): no drift computed")
    print(
        f"\n{report.rows} rows vs model {report.model_version}: {report.verdict.replace('_', ' ')}; "
        f"{len(report.drifted_features)}/{len(report.features)} features drifted (share {report.drift_share:.3f})"
    )
    if report.outliers is not None:
        print(f"outliers: {report.outliers.summary()}")


def verdict_text(feature: FeatureDrift) -> str:
    """'ok', 'n/a', or 'DRIFT psi,js' with whether the model relies on the feature, when the manifest says."""
    if feature.drift is None:
        return "n/a"
    if not feature.drift:
        return "ok"
    verdict = "DRIFT " + ",".join(feature.reasons)
    if feature.important is None or feature.importance is None:
        return verdict
    return f"{verdict} ({'important' if feature.important else 'unimportant'}: importance {feature.importance:.4f})"


def cmd_drift(args: argparse.Namespace) -> int:
    target, manifest, graph = _live_bundle(args.stage)
    report = csv_report(Path(args.file), manifest, target.settings.monitor.drift)
    estimated = csv_estimated_quality(Path(args.file), manifest, graph)
    if args.json:
        print(json.dumps({**report_json(report), **estimated_json(estimated)}, indent=2))
    else:
        print_table(report)
        print_estimated(estimated)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from slipway.target import resolve

    target = resolve(args.stage)
    latest = factory.monitoring_store(target.names.artifacts_bucket).latest_report()
    if latest is None:
        raise ValueError("no drift report yet: run `slipway monitor` first")
    _, html = latest
    out = Path(args.out)
    out.write_text(html, encoding="utf-8")
    print(f"wrote {out} (open it in a browser)")
    return 0


def print_rollout(figures: RolloutFigures) -> None:
    """The candidate beside live: what each answered, and the shadow comparison."""
    for role, version in (("live", figures.live), ("candidate", figures.candidate)):
        print(f"{role} {version.version}: {version.requests} requests, {version.rows} rows, p99 "
              f"{_ms(version.latency_p99_ms)}, plan B {version.fallback_share:.1%}")  # fmt: skip
    shadow = figures.shadow
    if shadow is not None:
        agreement = "-" if shadow.label_agreement is None else f"{shadow.label_agreement:.1%}"
        difference = "-" if shadow.p99_abs_difference is None else f"{shadow.p99_abs_difference:.3g}"
        latency = f"{_ms(shadow.latency_p99_ms)} (live {_ms(shadow.live_latency_p99_ms)})"
        print(f"shadow: {shadow.rows} rows scored by both, label agreement {agreement}, p99 difference "
              f"{difference}, candidate p99 {latency}, {shadow.errors} failed")  # fmt: skip


_GAP_NAMES = {
    "demographic_parity": "demographic parity",
    "true_positive_rate": "TPR",
    "false_positive_rate": "FPR",
    "mean_prediction": "mean prediction",
    "mae": "MAE",
}


def print_segments(segments: SegmentReport) -> None:
    """Per segment feature: each segment's rows and figures, the gaps and the verdict."""
    classification = segments.task == "classification"
    binary = segments.positive_class is not None

    def fmt(value: float | None) -> str:
        return f"{value:8.3f}" if value is not None else f"{'-':>8}"

    positive = f" (positive class {segments.positive_class})" if binary else ""
    print(f"\nbias across segments{positive}: segments need {segments.min_rows} rows, {segments.min_labelled} "
          f"labelled; a gap over {segments.gap_alarm:g} alarms")  # fmt: skip
    columns = ("positive", "TPR", "FPR") if classification else ("mean", "MAE", "")
    for feature in segments.features:
        print(f"{feature.feature[:25]:26}{'rows':>8}{columns[0]:>9}{'labelled':>9}{'metric':>8}"
              f"{columns[1]:>8}{columns[2]:>8}")  # fmt: skip
        for s in feature.segments:
            if classification:
                figures = (s.positive_rate, s.metric, s.true_positive_rate, s.false_positive_rate)
            else:
                figures = (s.mean_prediction, s.metric, s.mae, None)
            note = "" if s.declared else "  (not a declared segment)"
            if s.declared and not s.sufficient:
                note = "  insufficient rows"
            elif s.declared and not s.labelled_sufficient:
                note = "  insufficient labels"
            rate, metric, first, second = figures
            print(f"  {s.segment[:23]:24}{s.rows:8d} {fmt(rate)}{s.labelled_rows:9d}{fmt(metric)}{fmt(first)}"
                  f"{fmt(second) if classification else '':8}{note}")  # fmt: skip
        gaps = ", ".join(
            f"{_GAP_NAMES[g.name]} {'insufficient data' if g.value is None else f'{g.value:.3f}'}"
            + (f" ({g.positive_class})" if g.positive_class and not binary and g.value is not None else "")
            for g in feature.gaps
        )
        print(f"  gaps: {gaps}; verdict {feature.verdict.replace('_', ' ')}")
    if segments.largest_gap is not None:
        print(f"widest gap {segments.largest_gap:.3f} ({segments.largest_gap_feature}): {segments.verdict}")
    else:
        print("widest gap: insufficient data")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def cmd_monitor(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    target = resolve(args.stage)
    if target.local:
        from slipway.local.monitoring import monitor_once

        result = monitor_once(target.deployed_settings(), target.names, hours=args.hours)
        print_table(result.report)
        print(f"report s3://{target.names.artifacts_bucket}/{result.html_key}")
        for quality in result.quality:
            print(f"live {quality.metric} of {quality.model_version}: {quality.value} on {quality.labelled_rows} rows")
        if result.estimated is not None:
            print_estimated(result.estimated)
            if result.estimated.warning:
                print(f"  {result.estimated.warning} (realized {result.estimated.realized:.3f} on "
                      f"{result.estimated.labelled_rows} labelled rows)")  # fmt: skip
        if result.event is not None:
            print(f"DriftDetected event put: drifted {', '.join(result.event.drifted_features)}")
        if result.segments is not None:
            print_segments(result.segments)
        if result.rollout is not None:
            print_rollout(result.rollout)
        return 0
    from functions.adapters import factory

    answer = factory.client("lambda").invoke(FunctionName=target.names.monitor_function, Payload=b"{}")
    payload = json.loads(answer["Payload"].read() or b"{}")
    print(json.dumps(payload, indent=2))
    return 1 if answer.get("FunctionError") else 0


def add_commands(command: Any) -> None:
    """Register the three commands with the CLI's `command(name, handler, help)` helper."""
    drift = command(
        "drift",
        cmd_drift,
        "Drift statistics of the rows in a CSV against the live model's baseline, and the model's quality on them "
        "estimated without labels.",
    )
    drift.add_argument("file", help="CSV with a header row naming the features (and optionally label/value)")
    drift.add_argument("--json", action="store_true", help="machine-readable output")
    report = command("report", cmd_report, "Write the HTML drift report of the last monitored window.")
    report.add_argument("--out", default="drift-report.html", help="where to write it (default: drift-report.html)")
    monitor = command("monitor", cmd_monitor, "Run one drift monitor cycle now (local stack or AWS).")
    monitor.add_argument("--hours", type=int, default=None, help="local: hours of capture up to now (default: setting)")
