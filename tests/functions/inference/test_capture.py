"""The capture writer: columnar lines from the encoder's canonical values, within the size bound."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from functions.core.capture import MAX_CAPTURED_TEXT, MAX_LINE_BYTES, ROWS_PER_LINE, CaptureRecord
from functions.core.features import Feature, FeatureSpec, FeatureType
from functions.core.manifest import Baseline, FallbackAnswer, FeatureBaseline, Lineage, Manifest, Parity
from functions.inference.capture import Capture
from stage.settings import InferenceSettings

NOW = datetime(2026, 1, 5, 10, 7, tzinfo=UTC)


def _answers(count: int) -> list[dict[str, Any]]:
    return [{"label": "yes", "probabilities": {"no": 0.25, "yes": 0.75}, "value": None,
             "imputed": [], "out_of_range": [], "fallback": None} for _ in range(count)]  # fmt: skip


def _manifest(spec: FeatureSpec, capture_exclude: tuple[str, ...] = ()) -> Manifest:
    """A manifest around `spec`: capture reads only its feature spec and exclusions."""
    return Manifest(
        task="classification", classes=("no", "yes"), feature_spec=spec, metric="accuracy",
        metrics={"accuracy": 1.0}, fallback=FallbackAnswer(label="no"),
        baseline=Baseline(rows=1, features=(), prediction=FeatureBaseline(name="prediction", proportions=(1.0,),
                                                                          missing_rate=0.0)),
        parity=Parity(rows=1, max_abs_diff=0.0, tolerance=1e-4),
        lineage=Lineage(data_hash="h", rows=1, seed=0, recipe="test"), capture_exclude=capture_exclude,
    )  # fmt: skip


def _write(
    spec: FeatureSpec,
    rows: list[dict[str, Any]],
    answers: list[dict[str, Any]] | None = None,
    *,
    capture_exclude: tuple[str, ...] = (),
) -> list[tuple[str, CaptureRecord]]:
    """The lines written for `rows`, each with its validated record."""
    batch = spec.compile().encode(rows)
    answers = answers or _answers(len(rows))
    for answer, imputed, outside in zip(answers, batch.imputed, batch.out_of_range, strict=True):
        answer.update(imputed=imputed, out_of_range=outside)
    out = io.StringIO()
    with redirect_stdout(out):
        written = Capture(sampling_rate=1.0, clock=lambda: NOW).record(
            request_id="req",
            manifest=_manifest(spec, capture_exclude),
            model_version="v1",
            rows=rows,
            batch=batch,
            predictions=answers,
        )
    lines = [(line, CaptureRecord.model_validate_json(line)) for line in out.getvalue().splitlines()]
    assert written == sum(record.rows for _, record in lines)
    return lines


def _mixed_spec() -> FeatureSpec:
    return FeatureSpec(
        features=(
            Feature(name="x", precision=2, impute=0.0, train_min=0, train_max=10),
            Feature(name="colour", type=FeatureType.CATEGORY, categories=("red", "blue"), impute="red"),
            Feature(name="n", type=FeatureType.INTEGER, impute=3),
            Feature(name="flag", type=FeatureType.BOOLEAN, impute=False),
        )
    )


def test_columns_hold_canonical_values_with_null_for_missing_and_categories_as_sent() -> None:
    rows: list[dict[str, Any]] = [{"x": 1.23456, "colour": "blue", "n": 7, "flag": True},
                                  {"colour": "green", "x": 12.0}, {"x": None, "n": None, "flag": False}]  # fmt: skip
    ((_, record),) = _write(_mixed_spec(), rows)
    assert (record.request_id, record.time, record.model_version) == ("req", NOW, "v1")
    assert (record.first_row, record.rows) == (0, 3)
    assert record.features == {"x": [1.23, 12.0, None], "colour": ["blue", "green", None], "n": [7.0, None, None],
                               "flag": [True, None, False]}  # fmt: skip
    assert record.imputed == [[], ["n", "flag"], ["x", "colour", "n"]]
    assert record.out_of_range == [[], ["x", "colour"], []]
    assert record.label == ["yes"] * 3 and record.probabilities == {"no": [0.25] * 3, "yes": [0.75] * 3}
    assert record.value is None and record.fallback == [None] * 3
    second = list(record.row_records())[1]
    assert second.row == 1 and second.features == {"x": 12.0, "colour": "green", "n": None, "flag": None}
    assert second.probabilities == {"no": 0.25, "yes": 0.75}


def test_a_regression_fallback_answer_is_captured_as_columns() -> None:
    answers: list[dict[str, Any]] = [{"label": None, "probabilities": None, "value": 1.5, "imputed": [],
                                      "out_of_range": [], "fallback": "runtime_error"} for _ in range(2)]  # fmt: skip
    ((_, record),) = _write(_mixed_spec(), [{"x": 1.0}, {"x": 2.0}], answers)
    assert record.label is None and record.probabilities is None
    assert record.value == [1.5, 1.5] and record.fallback == ["runtime_error"] * 2


def test_an_unsampled_request_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    spec = _mixed_spec()
    rows = [{"x": 1.0}]
    capture = Capture(sampling_rate=0.5, sample=lambda: 0.7)
    batch = spec.compile().encode(rows)
    assert capture.record(request_id="r", manifest=_manifest(spec), model_version="v", rows=rows, batch=batch,
                          predictions=_answers(1)) == 0  # fmt: skip
    assert capsys.readouterr().out == ""


def test_the_widest_allowed_request_stays_under_the_line_bound() -> None:
    """The most rows a request may carry, wide rows of the longest values, every feature flagged."""
    widest = InferenceSettings.model_fields["max_instances"].metadata
    max_rows = next(m.le for m in widest if hasattr(m, "le"))
    numeric = [Feature(name=f"{'n' * 60}{i:04d}", precision=6, impute=0.0, train_min=0, train_max=1)
               for i in range(100)]  # fmt: skip
    categories = [Feature(name=f"{'c' * 60}{i:04d}", type=FeatureType.CATEGORY, categories=("a", "b"), impute="a")
                  for i in range(10)]  # fmt: skip
    spec = FeatureSpec(features=(*numeric, *categories))
    rng = np.random.default_rng(0)
    huge = (-rng.uniform(1, 2, (max_rows, len(numeric))) * 1e37).tolist()
    unseen = "é\n" * 10_000  # escaped and multi-byte, and far longer than any category is kept
    rows: list[dict[str, Any]] = []
    for i, values in enumerate(huge):
        row: dict[str, Any] = {f.name: v for f, v in zip(numeric, values, strict=True) if (i + hash(f.name)) % 2}
        row.update({f.name: unseen for f in categories})
        rows.append(row)
    lines = _write(spec, rows)
    assert max(len(line.encode()) for line, _ in lines) <= MAX_LINE_BYTES
    records = [record for _, record in lines]
    assert sum(r.rows for r in records) == max_rows
    assert [r.first_row for r in records] == list(np.cumsum([0] + [r.rows for r in records[:-1]]))
    assert min(r.rows for r in records) < ROWS_PER_LINE  # the byte bound split chunks of this width
    assert {len(str(v)) for r in records for f in categories for v in r.features[f.name]} == {MAX_CAPTURED_TEXT}


def test_a_row_too_wide_for_any_line_is_logged_not_written(caplog: pytest.LogCaptureFixture) -> None:
    spec = FeatureSpec(features=tuple(Feature(name=f"f{i}", precision=6, impute=0.0) for i in range(12_000)))
    row = {f"f{i}": -1.2345678901234567e37 for i in range(12_000)}
    with caplog.at_level(logging.WARNING):
        assert _write(spec, [row]) == []
    assert "over the line limit" in caplog.text


# Features the manifest excludes from capture


@pytest.mark.parametrize("count", [3, ROWS_PER_LINE * 2 + 1], ids=["one line", "several lines"])
def test_excluded_features_leave_no_column_no_flag_and_no_value_in_any_line(count: int) -> None:
    secret_number, secret_text = 987.654321, "postcode-SW1A-2AA"
    rows = [{"x": 12.0, "colour": secret_text, "n": None, "flag": True} for _ in range(count)]
    rows[0]["x"] = secret_number
    lines = _write(_mixed_spec(), rows, capture_exclude=("x", "colour"))
    for line, record in lines:
        assert list(record.features) == ["n", "flag"]
        assert secret_text not in line and "987.65" not in line
        assert record.imputed == [["n"]] * record.rows  # not "x" or "colour", whatever they were
        assert record.out_of_range == [[]] * record.rows
    expanded = [row for _, record in lines for row in record.row_records()]
    assert [row.features for row in expanded] == [{"n": None, "flag": True}] * count


def test_an_excluded_missing_feature_is_not_named_among_the_imputed() -> None:
    ((_, record),) = _write(_mixed_spec(), [{"x": 1.0}, {"x": 2.0, "n": 4}], capture_exclude=("n",))
    assert list(record.features) == ["x", "colour", "flag"]
    assert record.imputed == [["colour", "flag"], ["colour", "flag"]]
