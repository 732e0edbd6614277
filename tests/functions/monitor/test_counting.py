"""The streaming counter: chunking, malformed lines, the window and model versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from functions.core.capture import CaptureRecord
from functions.core.drift import count_columns
from functions.core.features import Feature, FeatureType
from functions.core.manifest import FeatureBaseline, Manifest
from functions.monitor.counting import WindowCounter
from functions.training.train import Bundle
from tests.capture_lines import capture_lines


def _lines(bundle: Bundle, rows: int, *, time: str = "2026-01-01T00:30:00+00:00") -> tuple[list[bytes], np.ndarray]:
    """`rows` rows as capture lines of requests of 7 rows each (so chunks end mid-request)."""
    names = bundle.manifest.feature_spec.names
    matrix = np.round(np.random.default_rng(0).normal(15, 5, (rows, len(names))), 2)
    lines = []
    for start in range(0, rows, 7):
        part = matrix[start : start + 7]
        lines += capture_lines(request_id=f"r{start}", time=time, model_version=bundle.version,
                               features=[dict(zip(names, row.tolist(), strict=True)) for row in part],
                               labels=["benign"] * len(part), rows_per_line=3)  # fmt: skip
    return [line + b"\n" for line in lines], matrix


def test_chunked_counts_equal_one_pass_and_skip_malformed_lines(bundle: Bundle) -> None:
    lines, matrix = _lines(bundle, 2_500)
    counter = WindowCounter(lambda version: bundle.manifest if version == bundle.version else None, chunk_rows=1_000)
    short = lines[0].replace(b'"rows":3', b'"rows":4')  # a column shorter than the record claims
    counter.add_lines([b"not json\n", *lines[:500], b"[1, 2]\n", *lines[500:], b'{"model_version": "x"}\n', short])
    counted = counter.result()[bundle.version]
    names = bundle.manifest.feature_spec.names
    direct = count_columns(bundle.manifest, {n: matrix[:, i] for i, n in enumerate(names)}, ["benign"] * 2_500)
    assert counted.rows == 2_500 and counted.features == direct.features and counted.prediction == direct.prediction
    assert counter.skipped == 4


def test_rows_outside_the_window_or_of_unknown_versions_are_left_out(bundle: Bundle) -> None:
    inside, _ = _lines(bundle, 10)
    outside, _ = _lines(bundle, 5, time="2026-01-01T02:00:00+00:00")
    other = [line.replace(bundle.version.encode(), b"unknown-version") for line in inside[:2]]
    counter = WindowCounter(lambda version: bundle.manifest if version == bundle.version else None)
    start, end = datetime(2026, 1, 1, 0, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
    counter.add_lines([*inside, *outside, *other], start, end)
    assert counter.result()[bundle.version].rows == 10
    assert counter.skipped == 2  # lines of an unknown version


def test_segment_counts_streamed_in_chunks_equal_one_pass(bundle: Bundle) -> None:
    from functions.core.manifest import SegmentSpec
    from functions.core.segments import count_segments

    manifest = bundle.manifest.model_copy(
        update={"segments": (SegmentSpec(feature="mean_radius", kind="numeric", edges=(12.0, 16.0)),)}
    )
    lines, matrix = _lines(bundle, 2_500)
    counter = WindowCounter(lambda version: manifest if version == bundle.version else None, chunk_rows=1_000)
    counter.add_lines(lines)
    radius = matrix[:, manifest.feature_spec.names.index("mean_radius")].tolist()
    assert counter.segment_counts(bundle.version) == count_segments(
        manifest, {"mean_radius": radius}, ["benign"] * 2_500
    )


def _with_a_category(bundle: Bundle) -> Manifest:
    """The bundle's manifest with its first feature turned into a category (red, blue) and its last a boolean."""
    manifest = bundle.manifest
    first, *middle, last = manifest.feature_spec.features
    colour = Feature(name=first.name, type=FeatureType.CATEGORY, categories=("red", "blue"), impute="red")
    flag = Feature(name=last.name, type=FeatureType.BOOLEAN, impute=False)
    spec = manifest.feature_spec.model_copy(update={"features": (colour, *middle, flag)})
    first_bins, *middle_bins, _ = manifest.baseline.features
    bins = (
        FeatureBaseline(name=first_bins.name, categories=("red", "blue"), proportions=(0.5, 0.5, 0.0), missing_rate=0),
        *middle_bins,
        FeatureBaseline(name=last.name, categories=("false", "true"), proportions=(0.5, 0.5, 0.0), missing_rate=0),
    )
    return manifest.model_copy(
        update={"feature_spec": spec, "baseline": manifest.baseline.model_copy(update={"features": bins})}
    )


def test_chunks_of_mixed_features_equal_one_pass_and_the_table_counted_whole(bundle: Bundle) -> None:
    manifest = _with_a_category(bundle)
    names = manifest.feature_spec.names
    rng = np.random.default_rng(1)
    rows = 1_000
    table: dict[str, list[Any]] = {n: np.round(rng.normal(15, 5, rows), 2).tolist() for n in names[1:-1]}
    table[names[0]] = rng.choice(["red", "blue", "green", None], rows).tolist()
    table[names[-1]] = rng.choice(np.array([True, False, "true", None], dtype=object), rows).tolist()
    table[names[3]] = [None if i % 5 == 0 else v for i, v in enumerate(table[names[3]])]
    labels = rng.choice(["benign", "malignant"], rows).tolist()
    lines = []
    for start in range(0, rows, 9):
        part = range(start, min(start + 9, rows))
        # Every third request lacks the second feature altogether: missing in its rows.
        absent = {names[1]} if start % 27 == 0 else set()
        features = [{n: table[n][i] for n in names if n not in absent} for i in part]
        lines += capture_lines(request_id=f"r{start}", time="2026-01-01T00:30:00+00:00", model_version=bundle.version,
                               features=features, labels=[labels[i] for i in part], rows_per_line=4)  # fmt: skip
        for i in part if absent else ():
            table[names[1]][i] = None

    def counted(chunk_rows: int) -> tuple[Any, Any]:
        manifest_of = {bundle.version: manifest}.get
        counter = WindowCounter(manifest_of, chunk_rows=chunk_rows)
        counter.add_lines(lines)
        return counter.result()[bundle.version], counter.skipped

    (whole, skipped), (chunked, _) = counted(10**6), counted(50)
    direct = count_columns(manifest, table, labels)
    assert skipped == 0 and whole.rows == chunked.rows == rows
    assert whole.features == chunked.features == direct.features
    assert whole.prediction == chunked.prediction == direct.prediction
    colour = whole.features[0]
    assert sum(colour.bins) + colour.missing == rows and colour.bins[2] == table[names[0]].count("green")
    assert whole.features[1].missing == sum(v is None for v in table[names[1]]) > 0


def _line(bundle: Bundle, **update: Any) -> bytes:
    """A valid line of 3 rows with some of its fields replaced (`features_<name>` replaces one column)."""
    names = bundle.manifest.feature_spec.names
    rows = [dict.fromkeys(names, 12.5) for _ in range(3)]
    (line,) = capture_lines(request_id="r", time="2026-01-01T00:30:00+00:00", model_version=bundle.version,
                            features=rows, labels=["benign"] * 3)  # fmt: skip
    record = orjson.loads(line)
    for key, value in update.items():
        if key.startswith("features_"):
            record["features"][key.removeprefix("features_")] = value
        else:
            record[key] = value
    return orjson.dumps(record)


def _lines_to_judge(bundle: Bundle) -> dict[str, bytes]:
    radius = bundle.manifest.feature_spec.names[0]
    every = {f"features_{name}": [[12.5]] * 3 for name in bundle.manifest.feature_spec.names}
    return {
        "as written": _line(bundle),
        "a nested list": _line(bundle, **{f"features_{radius}": [12.5, [1.0], 3.0]}),
        "every value a list": _line(bundle, **every),
        "an object": _line(bundle, **{f"features_{radius}": [12.5, {"a": 1}, 3.0]}),
        "numeric text": _line(bundle, **{f"features_{radius}": [12.5, "13.5", None]}),
        "other text and a boolean": _line(bundle, **{f"features_{radius}": ["big", True, 2]}),
        "a huge integer": _line(bundle, **{f"features_{radius}": [10**18, 1, 2]}),
        "an extra feature": _line(bundle, features_extra=["x", None, 1.5]),
        "an extra feature holding a list": _line(bundle, features_extra=[[1], None, 1.5]),
        "a column not a list": _line(bundle, **{f"features_{radius}": 12.5}),
        "a short column": _line(bundle, **{f"features_{radius}": [12.5, 12.5]}),
        "features not an object": _line(bundle, features=[1, 2, 3]),
        "a naive time": _line(bundle, time="2026-01-01T00:30:00"),
        "a time in Z": _line(bundle, time="2026-01-01T00:30:00Z"),
        "rows as text": _line(bundle, rows="3"),
        "a number as label": _line(bundle, label=[1, 2, 3]),
        "an old format": _line(bundle, slipway_capture=1),
        "a NaN literal": _line(bundle).replace(b"12.5", b"NaN", 1),
        "an integer beyond 64 bits": _line(bundle).replace(b"12.5", b"1" * 30, 1),
        "truncated": _line(bundle)[:-40],
    }


def test_a_line_is_counted_exactly_when_capture_record_accepts_it(bundle: Bundle) -> None:
    manifest_of = {bundle.version: bundle.manifest}.get
    for name, line in _lines_to_judge(bundle).items():
        try:
            record: CaptureRecord | None = CaptureRecord.model_validate_json(line)
        except ValidationError:
            record = None
        counter, expected = WindowCounter(manifest_of), WindowCounter(manifest_of)
        counter.add_lines([line])
        assert counter.skipped == (record is None), name
        if record is not None:
            expected.add_record(record)
            assert counter.result() == expected.result() and counter.result()[bundle.version].rows == 3, name
        # Outside the window or of an unknown version a malformed line is still one skipped; a valid one is dropped.
        late = WindowCounter(manifest_of)
        late.add_lines([line], end=datetime(2026, 1, 1, tzinfo=UTC))
        assert late.skipped == (record is None) and not late.result(), name
        unknown = WindowCounter(lambda version: None)
        unknown.add_lines([line])
        assert unknown.skipped == 1 and not unknown.result(), name


def test_regression_answers_and_their_segments_stream_like_one_pass(bundle: Bundle) -> None:
    from functions.core.manifest import SegmentSpec
    from functions.core.segments import count_segments

    prediction = FeatureBaseline(name="prediction", edges=(0.0, 1.0), proportions=(0.3, 0.4, 0.3), missing_rate=0)
    manifest = bundle.manifest.model_copy(
        update={
            "task": "regression",
            "classes": None,
            "baseline": bundle.manifest.baseline.model_copy(update={"prediction": prediction}),
            "segments": (SegmentSpec(feature="mean_radius", kind="numeric", edges=(12.0, 16.0)),),
        }
    )
    names = manifest.feature_spec.names
    rng = np.random.default_rng(2)
    matrix = np.round(rng.normal(15, 5, (300, len(names))), 2)
    values = [None if i % 11 == 0 else float(v) for i, v in enumerate(rng.normal(0.5, 1, 300))]
    lines = []
    for start in range(0, 300, 7):
        rows = [dict(zip(names, row.tolist(), strict=True)) for row in matrix[start : start + 7]]
        lines += capture_lines(request_id=f"r{start}", time="2026-01-01T00:30:00+00:00", model_version=bundle.version,
                               features=rows, values=values[start : start + 7], rows_per_line=3)  # fmt: skip
    counter = WindowCounter({bundle.version: manifest}.get, chunk_rows=40)
    counter.add_lines(lines)
    columns = {n: matrix[:, i] for i, n in enumerate(names)}
    direct = count_columns(manifest, columns, values)
    counted = counter.result()[bundle.version]
    assert counted.prediction == direct.prediction and counted.prediction.missing == 28
    assert counted.features == direct.features
    streamed = counter.segment_counts(bundle.version).features["mean_radius"]
    whole = count_segments(manifest, columns, values).features["mean_radius"]
    assert list(streamed) == list(whole) and all(streamed[s].rows == whole[s].rows for s in whole)
    # Chunk sums added up are the one-pass sum up to rounding (a float sum depends on its grouping).
    assert all(streamed[s].prediction_sum == pytest.approx(whole[s].prediction_sum, rel=1e-12) for s in whole)
