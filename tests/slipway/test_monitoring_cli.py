"""`slipway drift`, `monitor` and `report`, and the local capture shipper, against moto."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.core.drift import DriftReport, DriftThresholds, FeatureCounts, feature_drift
from functions.core.manifest import FeatureBaseline
from functions.training.train import Bundle, load_recipe, load_table
from slipway.cli import main
from slipway.local.monitoring import CaptureShipper, schedule_seconds
from slipway.monitoring_cli import report_json
from stage.names import ResourceNames
from tests.capture_lines import capture_lines


def _write_csv(path: Path, *, scale: dict[str, float], rows: int = 400) -> None:
    columns, _ = load_table(load_recipe())
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for i in range(rows):
            writer.writerow([float(columns[n][i % len(columns[n])]) * scale.get(n, 1.0) for n in names])


def test_drift_json_flags_the_shifted_feature(live_bundle: Bundle, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "rows.csv"
    _write_csv(path, scale={"mean_radius": 1.6})
    assert main(["drift", str(path), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["features"]["mean_radius"]["drift"] is True
    assert set(answer["features"]["mean_radius"]) >= {"psi", "js", "ks", "missing_rate", "out_of_range", "drift"}
    assert answer["features"]["mean_texture"]["drift"] is False
    assert answer["drifted_features"] == ["mean_radius"]
    # The rows scored by the live model: its quality on them estimated without labels, with the band and the note.
    estimated, band = answer["estimated_quality"], answer["estimated_quality_band"]
    assert set(estimated) == {"accuracy", "roc_auc", "f1_macro", "log_loss"}
    assert answer["estimated_quality_metric"] == "roc_auc" and answer["estimated_quality_rows"] == 400
    assert all(band[m]["lower"] <= estimated[m] <= band[m]["upper"] for m in estimated)
    assert 0.5 < estimated["accuracy"] <= 1 and "blind to concept drift" in answer["estimated_quality_note"]


def test_drift_json_gives_a_category_psi_and_js_beside_linf() -> None:
    baseline = FeatureBaseline(name="colour", categories=("red", "blue"), proportions=(0.5, 0.5, 0.0), missing_rate=0)
    colour = feature_drift(baseline, FeatureCounts(name="colour", bins=[700, 300, 0]), 1000, DriftThresholds(), 200)
    report = DriftReport(
        model_version="v1", window_start=None, window_end=None, rows=1000, min_rows=200, verdict="drift",
        drift_detected=True, drift_share=1.0, drifted_features=["colour"], features=[colour],
        prediction=colour.model_copy(update={"name": "prediction"}),
    )  # fmt: skip

    answer = report_json(report)["features"]["colour"]

    assert set(answer) >= {"psi", "js", "linf", "unseen_share", "drift"} and "ks" not in answer
    assert answer["psi"] == colour.psi and answer["js"] == colour.js and answer["reasons"] == ["linf", "psi", "js"]


def test_drift_text_says_whether_a_drifted_feature_is_important(
    live_bundle: Bundle, tmp_path: Path, capsys: Any
) -> None:
    report = live_bundle.manifest.feature_report
    assert report is not None
    ranked = sorted(report.features, key=lambda f: f.rank)
    top, bottom = ranked[0], ranked[-1]
    path = tmp_path / "rows.csv"
    _write_csv(path, scale={top.name: 1.6, bottom.name: 1.6})

    assert main(["drift", str(path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert main(["drift", str(path), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)

    assert lines[top.name].endswith(f"(important: importance {top.importance:.4f})")
    assert lines[bottom.name].endswith(f"(unimportant: importance {bottom.importance:.4f})")
    assert " DRIFT " in lines[bottom.name]
    assert answer["features"][bottom.name]["important"] is False
    assert answer["features"][top.name]["importance"] == top.importance


def test_drift_table_and_a_bad_file(live_bundle: Bundle, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "rows.csv"
    _write_csv(path, scale={})
    assert main(["drift", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no drift" in out and "estimated quality without labels over 400 rows: accuracy" in out
    assert main(["drift", str(tmp_path / "missing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_shipped_capture_is_monitored_and_reported(
    live_bundle: Bundle, names: ResourceNames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from slipway.target import Target

    monkeypatch.setattr(Target, "local", property(lambda self: True))  # as against the local stack
    log = tmp_path / "inference.log"
    log.write_text("")
    shipper = CaptureShipper(log, names.artifacts_bucket)
    columns, target = load_table(load_recipe())
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    with log.open("a") as handle:
        handle.write('{"level":"INFO","message":"not capture"}\n')
        for start in range(0, 300, 30):  # 10 requests of 30 rows, 3 lines of 10 rows each
            features = [
                {n: float(v[i]) * (1.8 if n in ("mean_radius", "mean_area", "worst_area") else 1)
                 for n, v in columns.items()}
                for i in range(start, start + 30)
            ]  # fmt: skip
            lines = capture_lines(request_id=f"r{start}", time=now, model_version=live_bundle.version,
                                  features=features, labels=[str(target[i]) for i in range(start, start + 30)],
                                  rows_per_line=10)  # fmt: skip
            handle.write(b"\n".join(lines).decode() + "\n")
    assert shipper.ship() == 30  # lines, shipped as they were written
    assert shipper.ship() == 0  # each line once
    assert main(["monitor"]) == 0
    out = capsys.readouterr().out
    assert "drift" in out and "mean_radius" in out
    assert "estimated quality: not estimated: no answer of the model with its probabilities" in out
    metrics = boto3.client("cloudwatch").list_metrics(Namespace=names.metrics_namespace, MetricName="FeatureDrifted")
    assert any(d["Value"] == "mean_radius" for m in metrics["Metrics"] for d in m["Dimensions"])
    html = tmp_path / "report.html"
    assert main(["report", "--out", str(html)]) == 0
    assert "mean_radius" in html.read_text() and "<svg" in html.read_text()


def test_schedule_seconds() -> None:
    assert schedule_seconds("rate(1 hour)") == 3600
    assert schedule_seconds("rate(5 minutes)") == 300
    assert schedule_seconds("cron(0 * * * ? *)") == 3600


def test_a_failing_local_monitor_run_is_logged_not_swallowed(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from slipway.local.monitoring import LocalMonitoring

    service = LocalMonitoring()
    runs: list[int] = []

    def _monitor() -> None:
        runs.append(1)
        if len(runs) >= 2:
            service.stop()
        raise RuntimeError("bucket gone")

    worker = threading.Thread(target=service._loop, args=(0.01, _monitor))
    worker.start()
    worker.join(timeout=5)
    out = capsys.readouterr().out
    assert len(runs) == 2, "a failed run is retried at the next tick"
    assert "local monitoring: monitor failed; retrying at the next tick" in out and "RuntimeError: bucket gone" in out


def test_monitor_output_shows_segments(
    bundle: Bundle, registry: Any, names: ResourceNames, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from datetime import UTC, datetime

    from functions.adapters import factory
    from functions.core.manifest import SegmentSpec
    from slipway.target import Target

    monkeypatch.setattr(Target, "local", property(lambda self: True))
    segments = (SegmentSpec(feature="mean_radius", kind="numeric", edges=(13.0,)),)
    manifest = bundle.manifest.model_copy(update={"segments": segments}).with_version(bundle.onnx_bytes)
    registry.register(manifest, bundle.onnx_bytes)
    registry.promote(manifest.version, "test")
    columns, target = load_table(load_recipe())
    now = datetime.now(UTC)
    lines = []
    for start in range(0, 300, 30):
        rows = range(start, start + 30)
        lines += capture_lines(request_id=f"r{start}", time=now.isoformat(), model_version=manifest.version,
                               features=[{n: float(v[i]) for n, v in columns.items()} for i in rows],
                               labels=[str(target[i]) for i in rows])  # fmt: skip
    factory.monitoring_store(names.artifacts_bucket).put_capture(now.replace(minute=0, second=0, microsecond=0),
                                                                 "part", lines)  # fmt: skip
    assert main(["monitor"]) == 0
    out = capsys.readouterr().out
    assert "bias across segments (positive class malignant)" in out
    assert "  < 13" in out and "  >= 13" in out and "demographic parity" in out
    assert "TPR insufficient data" in out  # no feedback yet: no labelled rows
