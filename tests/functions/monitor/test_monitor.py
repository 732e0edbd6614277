"""The monitor end to end under moto: capture objects in; metrics, reports and DriftDetected out."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from functions.adapters import factory
from functions.adapters.monitoring_store import S3LabelledRowSource
from functions.core.data_source import DataSource
from functions.core.events import DRIFT_DETECTED
from functions.core.feedback import FeedbackItem
from functions.core.manifest import SegmentSpec
from functions.core.registry import Registry
from functions.training.train import Bundle, load_recipe, load_table
from stage.environments import monitor_environment
from stage.names import ResourceNames
from stage.settings import load_settings
from tests.capture_lines import capture_lines

NOW = datetime(2026, 1, 5, 10, 7, tzinfo=UTC)
HOUR = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _capture(bundle: Bundle, names: ResourceNames, *, rows: int, shift: dict[str, float]) -> list[tuple[str, int]]:
    """`rows` served rows as requests of 10 rows each; the (request id, row) of every row."""
    columns, target = load_table(load_recipe())
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(target), rows)
    classes = bundle.manifest.classes or ()
    lines, ids = [], []
    for start in range(0, rows, 10):
        part = picks[start : start + 10]
        request_id = f"req-{start}"
        ids += [(request_id, row) for row in range(len(part))]
        time = HOUR + timedelta(seconds=start % 3600)
        features = [{name: float(values[i]) * (1 + shift.get(name, 0.0)) for name, values in columns.items()}
                    for i in part]  # fmt: skip
        lines += capture_lines(request_id=request_id, time=time.isoformat(), model_version=bundle.version,
                               features=features, labels=[str(target[i]) for i in part],
                               probabilities=[{c: 0.5 for c in classes} for _ in part], rows_per_line=4)  # fmt: skip
    store = factory.monitoring_store(names.artifacts_bucket)
    half = len(lines) // 2
    store.put_capture(HOUR, "part-1", lines[:half])
    store.put_capture(HOUR, "part-2", [b"not json", *lines[half:]])
    return ids


@pytest.fixture
def monitor(live_bundle: Bundle, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in monitor_environment(load_settings("dev"), names).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    _route_events(names)
    import functions.monitor.handler as module

    return importlib.reload(module)


def _route_events(names: ResourceNames) -> None:
    """DriftDetected events to a log group, where _events() reads them."""
    events = boto3.client("events")
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/events")
    events.put_rule(Name="drift", EventPattern=json.dumps({"detail-type": [DRIFT_DETECTED]}))
    arn = f"arn:aws:logs:us-east-1:{names.account}:log-group:/events"
    events.put_targets(Rule="drift", Targets=[{"Id": "logs", "Arn": arn}])


def _events() -> list[dict[str, Any]]:
    logs = boto3.client("logs")
    found = logs.filter_log_events(logGroupName="/events").get("events", [])
    return [json.loads(e["message"]) for e in found]


def _emf(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if '"_aws"' in line]


def test_shifted_capture_gives_drift_metrics_reports_and_an_event(
    monitor: Any, live_bundle: Bundle, names: ResourceNames, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _capture(
        live_bundle, names, rows=600, shift={"mean_radius": 0.5, "worst_texture": 0.6, "mean_smoothness": 0.4}
    )
    store = factory.monitoring_store(names.artifacts_bucket)
    feedback = [FeedbackItem(request_id=i, row=row, label="benign") for i, row in ids[:100]]
    store.put_feedback(feedback, HOUR + timedelta(minutes=30))
    capsys.readouterr()
    summary = monitor.monitor(NOW)
    assert summary["verdict"] == "drift"
    assert set(summary["drifted_features"]) >= {"mean_radius", "worst_texture", "mean_smoothness"}
    assert "mean_texture" not in summary["drifted_features"]

    report = json.loads(
        boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=summary["report"])["Body"].read()
    )
    assert report["report"]["rows"] == 600 and report["report"]["drift_detected"]
    assert report["quality"][0]["labelled_rows"] == 100 and report["quality"][0]["metric"] == "roc_auc"
    html = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=summary["html"])["Body"].read().decode()
    assert "mean_radius" in html and "<svg" in html

    documents = _emf(capsys.readouterr().out)
    overall = next(d for d in documents if "DriftShare" in d)
    assert overall["DriftDetected"] == [1.0] and overall["MonitoredRows"] == [600.0]
    per_feature = {d["feature"]: d for d in documents if "feature" in d}
    assert per_feature["mean_radius"]["FeatureDrifted"] == [1.0] and per_feature["mean_texture"]["FeatureDrifted"] == [
        0.0
    ]

    (event,) = _events()
    assert event["detail-type"] == DRIFT_DETECTED and event["source"] == "slipway.dev"
    assert event["detail"]["report_key"] == summary["report"] and event["detail"]["rows"] == 600


def test_unshifted_capture_gives_no_event(monitor: Any, live_bundle: Bundle, names: ResourceNames) -> None:
    _capture(live_bundle, names, rows=600, shift={})
    summary = monitor.monitor(NOW)
    assert summary["verdict"] == "no_drift" and summary["event_id"] is None
    assert _events() == []


def test_an_empty_window_is_insufficient_data(monitor: Any, live_bundle: Bundle) -> None:
    summary = monitor.monitor(NOW)
    assert summary["verdict"] == "insufficient_data" and summary["rows"] == 0 and summary["event_id"] is None


def test_a_segmented_model_gets_segment_figures_in_the_report_and_metrics(
    bundle: Bundle, registry: Registry, names: ResourceNames, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    segments = (SegmentSpec(feature="mean_radius", kind="numeric", edges=(13.0,)),)
    manifest = bundle.manifest.model_copy(update={"segments": segments}).with_version(bundle.onnx_bytes)
    segmented = Bundle(manifest, bundle.onnx_bytes)
    registry.register(manifest, bundle.onnx_bytes)
    registry.promote(manifest.version, "test")
    for key, value in monitor_environment(load_settings("dev"), names).items():
        monkeypatch.setenv(key, value)
    import functions.monitor.handler as module

    monitor = importlib.reload(module)
    ids = _capture(segmented, names, rows=600, shift={})
    store = factory.monitoring_store(names.artifacts_bucket)
    store.put_feedback([FeedbackItem(request_id=i, row=row, label="benign") for i, row in ids], HOUR)
    capsys.readouterr()
    summary = monitor.monitor(NOW)

    report = json.loads(
        boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=summary["report"])["Body"].read()
    )
    (feature,) = report["segments"]["features"]
    assert [s["segment"] for s in feature["segments"]] == ["< 13", ">= 13"]
    assert sum(s["rows"] for s in feature["segments"]) == 600
    assert {g["name"] for g in feature["gaps"]} == {"demographic_parity", "true_positive_rate", "false_positive_rate"}
    assert summary["segments"]["largest_gap"] == report["segments"]["largest_gap"] is not None
    html = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=summary["html"])["Body"].read().decode()
    assert "Bias across segments" in html and "<td>&gt;= 13</td>" in html

    documents = _emf(capsys.readouterr().out)
    overall = next(d for d in documents if "DriftShare" in d)
    assert overall["SegmentGap"] == [report["segments"]["largest_gap"]]
    per_segment = {d["Segment"]: d for d in documents if "Segment" in d}
    assert set(per_segment) == {"< 13", ">= 13"}
    assert per_segment["< 13"]["SegmentFeature"] == "mean_radius" and "SegmentRows" in per_segment["< 13"]
    assert per_segment["< 13"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["SegmentFeature", "Segment", "service"]
    ]
    (gaps,) = [d for d in documents if "DemographicParityGap" in d]
    assert gaps["SegmentFeature"] == "mean_radius" and "Segment" not in gaps


LAKE_BUCKET = "customer-lake"


def _keyed_capture(bundle: Bundle, names: ResourceNames, rows: int, hour: datetime) -> list[str]:
    """`rows` rows served in `hour` whose callers sent a key (patient-0, ...), one request each; their true labels."""
    columns, target = load_table(load_recipe())
    classes = bundle.manifest.classes or ()
    lines = []
    for i in range(rows):
        lines += capture_lines(
            request_id=f"keyed-{i}", time=(hour + timedelta(seconds=i)).isoformat(), model_version=bundle.version,
            features=[{name: float(values[i]) for name, values in columns.items()}], labels=[str(target[i])],
            probabilities=[{c: 1.0 if c == str(target[i]) else 0.0 for c in classes}], keys=[f"patient-{i}"],
        )  # fmt: skip
    factory.monitoring_store(names.artifacts_bucket).put_capture(hour, "keyed", lines)
    return [str(target[i]) for i in range(rows)]


def test_label_files_by_key_reach_live_quality_and_training_rows(
    live_bundle: Bundle, names: ResourceNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Label files count as received when they land (S3's clock, now): the rows were served three days before.
    now = datetime.now(UTC)
    served = (now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    truths = _keyed_capture(live_bundle, names, 40, served)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LAKE_BUCKET)
    body = "key,label\n" + "".join(f"patient-{i},{truths[i]}\n" for i in range(30))
    s3.put_object(Bucket=LAKE_BUCKET, Key="labels/dt=2026-01-05/part-0.csv", Body=body.encode())
    # patient-0 again (its time is later than the wrong label sent before), a key never served, a file without keys.
    extra = [{"key": "patient-0", "label": truths[0], "time": now.isoformat()}, {"key": "nobody", "label": truths[1]}]
    s3.put_object(Bucket=LAKE_BUCKET, Key="labels/late.jsonl", Body=b"\n".join(json.dumps(e).encode() for e in extra))
    s3.put_object(Bucket=LAKE_BUCKET, Key="labels/broken.csv", Body=b"id,label\npatient-1,x\n")
    store = factory.monitoring_store(names.artifacts_bucket)
    wrong = "benign" if truths[0] == "malignant" else "malignant"
    store.put_feedback([FeedbackItem(key="patient-0", label=wrong)], served + timedelta(hours=1))

    settings = load_settings("dev")
    settings = settings.model_copy(update={"data": DataSource(key="patient_id", labels=f"s3://{LAKE_BUCKET}/labels/")})
    for key, value in monitor_environment(settings, names).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    import functions.monitor.handler as module

    monitor = importlib.reload(module)
    summary = monitor.monitor(now + timedelta(hours=1))
    report = json.loads(s3.get_object(Bucket=names.artifacts_bucket, Key=summary["report"])["Body"].read())
    assert report["label_files"]["objects_read"] == 3 and report["label_files"]["labels"] == 32
    assert report["label_files"]["refused"] == [
        f"s3://{LAKE_BUCKET}/labels/broken.csv has no key column (it has id, label): a label file holds key, "
        "label and optionally time"
    ]
    # 33 labels name 31 rows: patient-0 is labelled three times; "nobody" is counted, not lost; the files' are late.
    assert report["labels"] == {"labels": 31, "matched": 30, "duplicates": 2, "unknown": 1, "late": 30, "foreign": 0}
    (quality,) = report["quality"]
    assert quality["labelled_rows"] == 30 and quality["value"] == 1.0  # patient-0 has its true label

    again = monitor.monitor(now + timedelta(hours=1))
    assert again["labels"]["labels"] == 31  # the files were not taken twice
    rows = S3LabelledRowSource(store).labelled_rows()
    assert [row.key for row in rows] == [f"patient-{i}" for i in range(30)]
    assert [row.label for row in rows] == truths[:30]
    # Each row names the stored feedback object its label came from (the run's record of label sources).
    assert all(row.source and row.source.startswith("feedback/") for row in rows)
    assert not any("source" in line for line in _stored_feedback_lines(s3, names.artifacts_bucket))


def _stored_feedback_lines(s3: Any, bucket: str) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="feedback/").get("Contents", [])]
    return [line for key in keys for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]


def _scored_capture(bundle: Bundle, names: ResourceNames, hour: datetime, rows: int = 300) -> list[tuple[str, str]]:
    """`rows` rows as the live model answered them (its probabilities), in requests of 50; (request id, label)
    of the first row of each request."""
    from functions.core.predictor import Predictor

    columns, _ = load_table(load_recipe())
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    store = factory.monitoring_store(names.artifacts_bucket)
    answered = []
    for start in range(0, rows, 50):
        features = [{name: float(values[i]) for name, values in columns.items()} for i in range(start, start + 50)]
        answers = predictor.score(predictor.encode(features))
        request_id = f"scored-{hour:%H}-{start}"
        answered.append((request_id, answers[0]["label"]))
        lines = capture_lines(request_id=request_id, time=(hour + timedelta(minutes=1)).isoformat(),
                              model_version=bundle.version, features=features,
                              labels=[a["label"] for a in answers],
                              probabilities=[a["probabilities"] for a in answers])  # fmt: skip
        store.put_capture(hour, f"scored-{start}", lines)
    return answered


def test_estimated_quality_is_published_reported_and_a_retrain_reason_below_its_threshold(
    live_bundle: Bundle, names: ResourceNames, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings("dev")
    settings = settings.model_copy(
        update={"monitor": settings.monitor.model_copy(update={"estimated_quality_alarm_below": 0.9999})}
    )
    for key, value in monitor_environment(settings, names).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    _route_events(names)
    import functions.monitor.handler as module

    monitor = importlib.reload(module)
    earlier = HOUR - timedelta(hours=1)
    _scored_capture(live_bundle, names, earlier)
    answered = _scored_capture(live_bundle, names, HOUR)
    # Labels that contradict every answer: the inputs did not change, the relation to the label did.
    flipped = [FeedbackItem(request_id=i, row=0, label="benign" if label == "malignant" else "malignant")
               for i, label in answered]  # fmt: skip
    factory.monitoring_store(names.artifacts_bucket).put_feedback(flipped, HOUR + timedelta(minutes=30))
    monitor.monitor(NOW - timedelta(hours=1))
    capsys.readouterr()
    summary = monitor.monitor(NOW)

    s3 = boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=names.artifacts_bucket, Key=summary["report"])["Body"].read())
    estimated = report["estimated_quality"]
    assert estimated["rows"] == 300 and estimated["metric"] == "roc_auc"
    assert 0.9 < estimated["metrics"]["roc_auc"]["value"] < 0.9999  # a good model, by its calibrated probabilities
    assert set(estimated["metrics"]) == {"accuracy", "roc_auc", "f1_macro", "log_loss"}
    assert "blind to concept drift" in estimated["note"]
    assert estimated["realized"] == 0.0 and estimated["disagrees"] is True
    assert estimated["warning"] == "estimate and realized quality disagree: concept drift?"
    html = s3.get_object(Bucket=names.artifacts_bucket, Key=summary["html"])["Body"].read().decode()
    assert "Estimated quality without labels" in html and "concept drift?" in html
    assert 'aria-label="estimated and realized quality"' in html  # the series of both cycles

    documents = _emf(capsys.readouterr().out)
    overall = next(d for d in documents if "DriftShare" in d)
    assert overall["EstimatedQuality"] == [estimated["metrics"]["roc_auc"]["value"]]
    per_metric = {d["metric"]: d["EstimatedQuality"] for d in documents if "metric" in d}
    assert per_metric["accuracy"] == [estimated["metrics"]["accuracy"]["value"]]

    (event,) = [e for e in _events() if e["detail"]["window_end"].startswith(NOW.strftime("%Y-%m-%dT%H"))]
    assert "estimated_quality" in event["detail"]["drifted_features"]
    assert event["detail"]["estimated_quality"]["threshold"] == 0.9999
