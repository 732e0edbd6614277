"""`slipway features`: the feature report of a registered version, read from its manifest, against moto."""

from __future__ import annotations

import json
from typing import Any

from functions.core.registry import Registry
from functions.training.train import Bundle
from slipway.cli import main
from slipway.features_cli import report_lines


def test_features_prints_the_live_model_report_by_rank(live_bundle: Bundle, capsys: Any) -> None:
    report = live_bundle.manifest.feature_report
    assert report is not None
    first = min(report.features, key=lambda f: f.rank)

    assert main(["features"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"model {live_bundle.version} (live)"
    assert out[1].startswith("feature importance: how much roc_auc drops when a feature's values are shuffled (5 ")
    assert out[2].split() == ["rank", "feature", "importance", "±", "std", "verdict"]
    assert out[3].split() == ["1", first.name, f"{first.importance:.4f}", "±", f"{first.std:.4f}", "important"]
    assert len(out) == 3 + len(report.features) + 1
    assert out[-1].startswith(f"roc_auc {report.holdout_metric:.4f} with every feature; ")
    assert any(line.endswith(" unimportant") for line in out)


def test_features_json_is_the_manifest_report(live_bundle: Bundle, capsys: Any) -> None:
    assert main(["features", live_bundle.version, "--json"]) == 0

    answer = json.loads(capsys.readouterr().out)
    assert answer["version"] == live_bundle.version
    assert live_bundle.manifest.feature_report is not None
    assert answer["feature_report"] == live_bundle.manifest.feature_report.model_dump(mode="json")


def test_a_version_trained_before_the_report_says_so(registry: Registry, bundle: Bundle, capsys: Any) -> None:
    older = bundle.manifest.model_copy(update={"feature_report": None})
    registry.register(older, bundle.onnx_bytes)

    assert main(["features", bundle.version]) == 0
    out = capsys.readouterr().out
    assert main(["features", bundle.version, "--json"]) == 0

    assert f"model {bundle.version} was trained before Slipway measured feature importance" in out
    assert "no feature report" in out and "Traceback" not in out
    assert json.loads(capsys.readouterr().out) == {"version": bundle.version, "feature_report": None}


def test_an_unknown_version_or_no_live_model_is_refused_clearly(registry: Registry, capsys: Any) -> None:
    assert main(["features"]) == 1
    assert "no live model: name a VERSION" in capsys.readouterr().err
    assert main(["features", "0123456789abcdef"]) == 1
    assert "unknown model version '0123456789abcdef'; registered: none" in capsys.readouterr().err


def test_the_line_without_the_unimportant_features_says_what_happened(bundle: Bundle) -> None:
    report = bundle.manifest.feature_report
    assert report is not None and report.without_unimportant is not None
    held = report.without_unimportant
    failed = held.model_copy(update={"metric": None, "error": "ValueError: no columns"})
    everything = report.model_copy(update={"without_unimportant": None})

    assert report_lines(report)[-1].endswith(
        f"{held.metric:.4f} without the {len(held.features)} unimportant ones "
        "(refitted with them held at their imputation value)"
    )
    assert report_lines(report.model_copy(update={"without_unimportant": failed}))[-1].endswith(
        f"refitting without the {len(held.features)} unimportant ones failed: ValueError: no columns"
    )
    assert report_lines(everything)[-1].endswith("every feature reaches the threshold, so none was left out")


def test_the_threshold_is_stated_with_its_basis(bundle: Bundle) -> None:
    report = bundle.manifest.feature_report
    assert report is not None
    dollars = report.model_copy(
        update={"metric": "mae", "threshold": 148.9, "threshold_share": 0.01, "threshold_scale": 14_890.77}
    )
    absolute = report.model_copy(update={"threshold": 0.05, "threshold_share": None, "threshold_scale": None})

    assert report_lines(report)[0].endswith("important from 0.001, 0.1% of roc_auc's range of 1)")
    assert report_lines(dollars)[0].endswith("important from 148.9, 1% of the model's holdout mae 14,891)")
    assert report_lines(absolute)[0].endswith("important from 0.05)"), "set in the metric's units"
