"""`slipway features`: which features earn their place in a registered model (its manifest's feature report)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from functions.core.errors import RegistryError
from functions.core.manifest import FeatureReport
from functions.core.quality import HIGHER_IS_BETTER


def report_lines(report: FeatureReport) -> list[str]:
    """The report as text: one row per feature by rank, then the metric without the unimportant ones."""
    change = "drops" if HIGHER_IS_BETTER[report.metric] else "rises"
    lines = [
        f"feature importance: how much {report.metric} {change} when a feature's values are shuffled "
        f"({report.repeats} repeats on {report.rows} holdout rows; important from {threshold_basis(report)})",
        f"  {'rank':>4}  {'feature':28}{'importance':>10} ± {'std':9} verdict",
    ]
    for feature in sorted(report.features, key=lambda f: f.rank):
        verdict = "important" if feature.important else "unimportant"
        lines.append(
            f"  {feature.rank:4d}  {feature.name[:27]:28}{feature.importance:10.4f} ± {feature.std:<9.4f} {verdict}"
        )
    lines.append(_without_line(report))
    return lines


def threshold_basis(report: FeatureReport) -> str:
    """The threshold and how it was chosen: a share of the metric's scale, or the recipe's absolute value."""
    if report.threshold_share is None or report.threshold_scale is None:
        return f"{report.threshold:g}"  # set in the metric's units (IMPORTANCE_THRESHOLD), or an older bundle
    share = f"{report.threshold_share * 100:g}%"
    if HIGHER_IS_BETTER[report.metric]:
        return f"{_figure(report.threshold)}, {share} of {report.metric}'s range of 1"
    scale = _figure(report.threshold_scale)
    return f"{_figure(report.threshold)}, {share} of the model's holdout {report.metric} {scale}"


def _figure(value: float) -> str:
    """Four significant digits, in plain notation for a target's units in the thousands (dollars, say)."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _without_line(report: FeatureReport) -> str:
    full = f"{report.metric} {report.holdout_metric:.4f} with every feature"
    without = report.without_unimportant
    if without is None:
        return f"{full}; every feature reaches the threshold, so none was left out"
    held = f"the {len(without.features)} unimportant one{'s' if len(without.features) > 1 else ''}"
    if without.metric is None:
        return f"{full}; refitting without {held} failed: {without.error}"
    return f"{full}; {without.metric:.4f} without {held} (refitted with them held at their imputation value)"


def print_report(report: FeatureReport | None, version: str) -> None:
    """The report of model `version`, or why it has none."""
    if report is None:
        print(
            f"model {version} was trained before Slipway measured feature importance: it has no feature report "
            "(train or retrain the recipe to measure one)"
        )
        return
    print("\n".join(report_lines(report)))


def cmd_features(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    registry = resolve(args.stage).registry()
    live = registry.live().version
    version = args.version or live
    if version is None:
        raise RegistryError("no live model: name a VERSION (`slipway models` lists them) or promote one first")
    known = registry.store.list_versions()
    if version not in known:
        raise RegistryError(f"unknown model version {version!r}; registered: {', '.join(known) or 'none'}")
    report = registry.store.get_manifest(version).feature_report
    if args.json:
        shown = None if report is None else report.model_dump(mode="json")
        print(json.dumps({"version": version, "feature_report": shown}, indent=2))
        return 0
    print(f"model {version}{' (live)' if version == live else ''}")
    print_report(report, version)
    return 0


def add_commands(command: Any) -> None:
    """Register `slipway features` with the CLI's `command(name, handler, help)` helper."""
    features = command(
        "features", cmd_features, "Which features earn their place in VERSION (default: the live model)."
    )
    features.add_argument("version", nargs="?", default=None, help="a registered version (default: the live one)")
    features.add_argument("--json", action="store_true", help="machine-readable output")
