"""The streaming counter: chunking, malformed lines, the window and model versions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from functions.core.drift import count_columns
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
