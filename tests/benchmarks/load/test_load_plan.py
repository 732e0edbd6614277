"""The load run's request plan and its table: correctness only, no traffic."""

from __future__ import annotations

import json
import random

import pytest

from benchmarks.load.plan import BAD, BATCH_ROWS, ONE_ROW, request_plan, valid_row
from benchmarks.load.report import KindFigures, render_table
from functions.core.features import Feature, FeatureSpec, FeatureType

SPEC = FeatureSpec(
    features=(
        Feature(
            name="size", precision=2, valid_min=0, valid_max=50, train_min=1, train_max=20, impute=5.0, required=True
        ),
        Feature(name="count", type=FeatureType.INTEGER, valid_min=0, train_min=0, train_max=9, impute=3),
        Feature(name="colour", type=FeatureType.CATEGORY, categories=("red", "blue"), impute="red"),
        Feature(name="urgent", type=FeatureType.BOOLEAN, impute=False),
    )
)


def test_valid_rows_are_accepted_by_every_feature_type() -> None:
    compiled = SPEC.compile()
    rng = random.Random(3)
    rows = [valid_row(SPEC, rng) for _ in range(200)]
    batch = compiled.encode(rows)
    assert batch.matrix.shape == (200, 4)
    assert not any(batch.out_of_range), "rows are drawn within the training range"
    assert {type(row["count"]) for row in rows} == {int}
    assert {row["colour"] for row in rows} == {"red", "blue"}


def test_the_plan_has_one_row_batch_and_bad_kinds_with_their_answers() -> None:
    kinds = {kind.name: kind for kind in request_plan(SPEC, max_instances=1000)}
    assert list(kinds) == [ONE_ROW, f"{BATCH_ROWS} rows", BAD]
    assert all(r.expected_status == 200 and r.rows == 1 for r in kinds[ONE_ROW].requests)
    batch = kinds[f"{BATCH_ROWS} rows"].requests[0]
    assert len(json.loads(batch.body)["instances"]) == batch.rows == BATCH_ROWS
    bad = kinds[BAD].requests
    assert all(400 <= r.expected_status < 500 for r in bad)
    variants = {r.variant for r in bad}
    assert {"malformed JSON", "unknown feature", "wrong type for size", "size above its valid range"} <= variants
    assert {"required size missing", "NaN for size", "over the 1000-row limit", "not JSON media type"} <= variants
    with pytest.raises(json.JSONDecodeError):
        json.loads(next(r.body for r in bad if r.variant == "malformed JSON"))


def test_a_batch_stays_within_the_row_limit() -> None:
    kinds = request_plan(SPEC, max_instances=40)
    assert kinds[1].name == "40 rows"
    assert all(r.rows == 40 for r in kinds[1].requests)


def test_the_plan_is_reproducible_from_its_seed() -> None:
    assert request_plan(SPEC, max_instances=10, seed=5) == request_plan(SPEC, max_instances=10, seed=5)
    assert request_plan(SPEC, max_instances=10, seed=5) != request_plan(SPEC, max_instances=10, seed=6)


def test_table_is_aligned_markdown() -> None:
    figures = [
        KindFigures("one row", 12_000, 0, 0, 0, 0, 200.0, 31, 80, 120.5),
        KindFigures("all", 20_000, 3, 1, 1, 1, 333.3, 35, 95, 140.0),
    ]
    lines = render_table(figures).splitlines()
    assert len({len(line) for line in lines}) == 1
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    assert cells[0][0] == "request kind"
    assert cells[2] == ["one row", "12,000", "200", "31 ms", "80 ms", "0", "0"]
    assert cells[3] == ["all", "20,000", "333", "35 ms", "95 ms", "2", "1"], "server errors: 5xx and no answer"
