"""`slipway demo` end to end in a fresh process: what it reports is checked against what the stack recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.core.capture import CAPTURE_MARKER
from slipway.demo import NORMAL_ROWS, SEGMENT_ROWS, SHIFT, SHIFTED_ROWS, SHIFTED_SPECIES, STEP_COUNT
from stage.settings import PROJECT_ROOT


def _environment() -> dict[str, str]:
    """A new user's shell: no AWS credentials, no endpoint; the demo needs neither."""
    drop = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "MOTO_PORT")
    return {key: value for key, value in os.environ.items() if key not in drop}


def _captured(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if f'"{CAPTURE_MARKER}"' in line]


Demo = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    state = tmp_path_factory.mktemp("demo")
    finished = subprocess.run(
        [sys.executable, "-m", "slipway.cli", "demo", "--dir", str(state)],
        cwd=PROJECT_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return finished, state


@pytest.fixture(scope="module")
def summary(demo: Demo) -> dict[str, Any]:
    """What the demo recorded in its summary.json."""
    _, state = demo
    return dict(json.loads((state / "summary.json").read_text()))


def test_demo_completes_every_step_and_stops_the_stack(demo: Demo, summary: dict[str, Any]) -> None:
    finished, _ = demo
    assert finished.returncode == 0, finished.stdout + finished.stderr
    out = finished.stdout
    for number in range(1, STEP_COUNT + 1):
        assert f"[{number}/{STEP_COUNT}]" in out
    assert out.count("  ✓ ") == STEP_COUNT and "✗" not in out
    assert "Stopping the local stack" in out and "Summary: completed" in out
    assert summary["outcome"] == "completed"
    assert summary["seconds"]["total"] > 0


def test_the_traffic_was_served_and_captured(demo: Demo, summary: dict[str, Any]) -> None:
    _, state = demo
    first = summary["first_version"]
    assert summary["served"] == {"normal": {first: NORMAL_ROWS}, "shifted": {first: SHIFTED_ROWS}}
    assert summary["feedback_accepted"] == SHIFTED_ROWS // 2  # the other half arrive as a label file
    captured = _captured(state / "inference.log")
    during_rollouts = sum(count for rollout in summary["rollouts"] for count in rollout["served"].values())
    rows: dict[str, int] = {}
    for record in captured:
        rows[record["request_id"]] = rows.get(record["request_id"], 0) + record["rows"]
    assert [n for n in rows.values() if n > 1] == [summary["outliers"]["usual_rows"] + 1], "the outlier request"
    one_row = NORMAL_ROWS + SHIFTED_ROWS + during_rollouts
    assert len(rows) == one_row + 1, "every request captured (dev: 100 %)"
    assert {record["model_version"] for record in captured} == {first, summary["decision"]["candidate"]["version"]}


def test_drift_is_detected_on_the_shifted_traffic_and_not_before(demo: Demo, summary: dict[str, Any]) -> None:
    finished, state = demo
    before, after = summary["cycles"]
    outlier_request = summary["outliers"]["usual_rows"] + 1
    assert before["rows"] == NORMAL_ROWS + outlier_request
    assert not before["drift_detected"] and not before["event"]
    assert after["rows"] == NORMAL_ROWS + outlier_request + SHIFTED_ROWS
    assert after["drift_detected"] and after["event"] and after["drift_share"] >= 0.1
    assert after["drifted_features"] and set(after["drifted_features"]) <= set(SHIFT)
    assert f"drifted: {', '.join(after['drifted_features'])}" in finished.stdout
    report = (state / "drift-report-2.html").read_text(encoding="utf-8")
    assert all(feature in report for feature in after["drifted_features"])
    assert (state / "drift-report-1.html").stat().st_size > 0


def test_the_drift_event_ran_the_pipeline_the_gate_promoted_and_rollback_restored(
    demo: Demo, summary: dict[str, Any]
) -> None:
    finished, state = demo
    execution, decision = summary["execution"], summary["decision"]
    assert execution["status"] == "SUCCEEDED"
    assert execution["states"][:5] == ["Prepare", "Train", "Evaluate", "Gate", "Register"]
    assert "Promote" in execution["states"]
    # The step handlers logged the decision themselves, in the pipeline's own log.
    pipeline_log = (state / "retrain.log").read_text(encoding="utf-8")
    assert "gate decision" in pipeline_log and decision["candidate"]["version"] in pipeline_log
    first = summary["first_version"]
    assert decision["verdict"] == "promote" and decision["live"]["version"] == first
    assert decision["candidate"]["version"] != first
    assert decision["data_rows"] > SHIFTED_ROWS
    assert summary["promoted"]["version"] == decision["candidate"]["version"]
    assert summary["promoted"]["previous"] == first and summary["promoted"]["action"] == "promote"
    assert f"live pointer: {first} (previous none; rollback" in finished.stdout, "rolled back by hand first"


def test_the_retrained_candidate_is_rolled_out_to_promotion_and_a_bad_one_refused(
    demo: Demo, summary: dict[str, Any]
) -> None:
    finished, _ = demo
    good, bad = summary["rollouts"]
    retrained = summary["decision"]["candidate"]["version"]
    assert (good["candidate"], good["outcome"]) == (retrained, "promote")
    assert good["reasons"] == {"shadow": [], "canary": []}
    assert retrained in good["served"], "the canary answered some requests"
    assert bad["outcome"] == "refuse" and list(bad["reasons"]) == ["shadow"]
    assert any("labels differ" in reason for reason in bad["reasons"]["shadow"])
    assert bad["candidate"] not in bad["served"], "a shadow never answers"
    final = summary["final_pointer"]
    assert final["version"] == retrained and final["previous"] == summary["first_version"]
    assert f"live now: {retrained}" in finished.stdout


def test_an_in_range_outlier_is_flagged_and_the_feature_report_is_shown(demo: Demo, summary: dict[str, Any]) -> None:
    finished, _ = demo
    outliers, report = summary["outliers"], summary["features"]
    assert outliers["odd"]["flag"] is True and outliers["odd"]["score"] > 1
    assert outliers["usual_flagged"] / outliers["usual_rows"] < 0.05
    assert len(report["features"]) == 30 and report["metric"] == "roc_auc"
    top = min(report["features"], key=lambda f: f["rank"])
    assert f"1  {top['name']}" in finished.stdout and "without the" in finished.stdout


def test_a_gap_between_species_appears_when_one_species_traffic_shifts(demo: Demo, summary: dict[str, Any]) -> None:
    finished, _ = demo
    before, after = summary["segments"]

    def species(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
        [feature] = report["features"]
        assert feature["feature"] == "species"
        return {s["segment"]: s for s in feature["segments"] if s["declared"]}

    assert set(species(before)) == {"Adelie", "Chinstrap", "Gentoo"}
    assert sum(s["rows"] for s in species(before).values()) == SEGMENT_ROWS
    assert all(s["sufficient"] and s["labelled_sufficient"] for s in species(before).values())
    assert before["verdict"] == "ok" and after["verdict"] == "gap"
    assert after["largest_gap"] > before["largest_gap"] and after["largest_gap"] > after["gap_alarm"]
    shifted, usual = species(after)[SHIFTED_SPECIES], species(before)[SHIFTED_SPECIES]
    assert shifted["positive_rate"] < usual["positive_rate"] - 0.1, "light birds read as female"
    assert "bias across segments (positive class male)" in finished.stdout


def test_ctrl_c_stops_the_stack_and_says_so(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "slipway.cli", "demo", "--dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(f"[2/{STEP_COUNT}]"):
            process.send_signal(signal.SIGINT)
            break
    out, _ = process.communicate(timeout=120)
    text = "".join(seen) + out
    assert process.returncode == 1
    assert "interrupted" in text and "Stopping the local stack" in text
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "interrupted"


def test_the_run_read_the_new_day_of_the_lake_and_only_it(summary: dict[str, Any]) -> None:
    data = summary["data"]
    assert summary["landed"].endswith("/sales/dt=2026-12-04/part-0.parquet")
    assert (data["objects"], data["objects_read"], data["table_rows"]) == (4, 1, 569 + 200), data
    # Labels by request id (POST /feedback) and by patient id (the label file), all joined to their rows.
    assert data["labelled_rows"] == SHIFTED_ROWS, data


def test_labels_in_a_file_keyed_by_patient_id_reach_live_quality(summary: dict[str, Any]) -> None:
    assert "/labels/dt=" in summary["label_file"] and summary["label_file"].endswith("/outcomes.csv")
    _, after = summary["cycles"][:2]
    assert after["label_files"] == {"objects_read": 1, "labels": SHIFTED_ROWS // 2, "refused": []}
    assert after["labels"] == {
        "labels": SHIFTED_ROWS, "matched": SHIFTED_ROWS, "duplicates": 0, "unknown": 0, "late": 0, "foreign": 0
    }  # fmt: skip
