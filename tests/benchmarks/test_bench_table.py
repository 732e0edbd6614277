"""The benchmark table and the naive baseline handler: correctness only, no timing."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmarks.readme import END, HEADLINE, HEADLINE_END, HEADLINE_START, START, headline, with_table
from benchmarks.table import Row, format_value, render_markdown
from slipway.local.lambda_runtime import HttpRequest, proxy_event


def test_ratio_is_baseline_over_ours() -> None:
    assert Row("x", "ms", 0.5, 5.0).ratio == pytest.approx(10.0)
    assert Row("x", "ms", 0.5).ratio is None
    assert Row("x", "ms", None, 5.0).ratio is None


def test_format_value_never_uses_exponents() -> None:
    assert format_value(0.2141, "ms") == "0.214 ms"
    assert format_value(12.34, "ms") == "12.3 ms"
    assert format_value(1234.5, "MB") == "1234 MB"
    assert format_value(None, "MB") == "not measured"


def test_table_is_aligned_markdown_with_notes() -> None:
    rows = [
        Row("warm, 1 row, p50", "ms", 0.25, 2.5, target="≤ 0.3 ms", met=True, note="how it was measured"),
        Row("package", "MB", None, 208.0, target="≤ 120 MB"),
    ]
    lines = render_markdown(rows).splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len({len(line) for line in table}) == 1
    assert table[0].split("|")[1].strip() == "figure"
    assert "10.0x" in table[2] and "yes" in table[2] and "[1]" in table[2]
    assert "not measured" in table[3]
    assert lines[-1] == "[1] how it was measured"


def test_naive_baseline_answers_a_proxy_event(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    pipeline = LogisticRegression().fit(x, np.where(x[:, 0] > 0, "yes", "no"))
    path = tmp_path / "naive.joblib"
    joblib.dump((pipeline, ["a", "b"]), path)
    monkeypatch.setenv("NAIVE_MODEL_PATH", str(path))
    sys.modules.pop("benchmarks.naive_baseline", None)
    naive = importlib.import_module("benchmarks.naive_baseline")

    body = json.dumps({"instances": [{"a": 2.0, "b": 0.0}, {"a": -2.0, "b": 0.0}]})
    response = naive.lambda_handler(proxy_event(HttpRequest("POST", "/predict", body=body)), None)

    assert response["statusCode"] == 200
    predictions = json.loads(response["body"])["predictions"]
    assert [p["label"] for p in predictions] == ["yes", "no"]
    assert sum(predictions[0]["probabilities"].values()) == pytest.approx(1.0)
    sys.modules.pop("benchmarks.naive_baseline", None)


def test_the_readme_table_is_replaced_between_its_markers_and_nothing_else() -> None:
    readme = f"# Slipway\n\nprose before\n{START}\nold line\n\n| old | table |\n{END}\nprose after\n"
    written = with_table(readme, "| new | table |", "Measured today:")
    assert written == f"# Slipway\n\nprose before\n{START}\nMeasured today:\n\n| new | table |\n{END}\nprose after\n"
    assert with_table(written, "| new | table |", "Measured today:") == written


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="no block between"):
        with_table("# Slipway\n| old | table |\n", "| new |", "Measured today:")


def test_the_readme_headline_is_those_rows_of_the_full_table_without_note_numbers() -> None:
    rows = [Row(figure, "ms", 1.0 + i, note=f"note {i}") for i, figure in enumerate(reversed(HEADLINE))]
    rows.insert(2, Row("a figure the README leaves out", "ms", 9.0))
    table = render_markdown(rows)
    short = headline(table).splitlines()
    assert short[0].split("|")[1].strip() == "figure" and len(short) == 2 + len(HEADLINE)
    assert [line.split("|")[1].strip() for line in short[2:]] == list(HEADLINE)
    assert "[" not in "".join(short) and "leaves out" not in "".join(short)
    with pytest.raises(ValueError, match="no row for the headline"):
        headline(render_markdown(rows[1:]))


def test_the_published_headline_matches_the_published_full_table() -> None:
    """README.md's headline figures are rows of docs/performance.md's table, from the same run."""
    root = Path(__file__).resolve().parents[2]
    full = root.joinpath("docs", "performance.md").read_text().partition(START)[2].partition(END)[0]
    readme = root.joinpath("README.md").read_text().partition(HEADLINE_START)[2].partition(HEADLINE_END)[0]
    assert full.splitlines()[1] == readme.splitlines()[1]  # the same "Measured ..." line
    assert headline(full).split("\n", 2)[2] in readme
