"""What the load run sends: request bodies built from the live model's feature spec, grouped by kind.

Built from GET /model's `feature_spec`, not from the example data, so the run
fits whatever model is live. Each request carries the status it must get: 200
(with one prediction per row) for the good ones, the documented 4xx for each
bad one. The locustfile reads the plan as JSON and imports nothing of the project.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from functions.core.features import Feature, FeatureSpec, FeatureType

ONE_ROW = "one row"
BAD = "bad request"
# The mix, by weight: mostly one-row calls, as a client scoring one case at a time sends them.
WEIGHTS = {ONE_ROW: 6, "batch": 2, BAD: 2}
BATCH_ROWS = 100
DISTINCT_ONE_ROW = 200
DISTINCT_BATCHES = 20
JSON = "application/json"


@dataclass(frozen=True)
class PlannedRequest:
    """One POST /predict body and the answer it must get."""

    variant: str
    body: str
    expected_status: int
    rows: int = 0  # predictions a 200 must carry
    content_type: str = JSON


@dataclass(frozen=True)
class Kind:
    """A kind of request: its share of the traffic (weight) and the bodies drawn from at random."""

    name: str
    weight: int
    requests: tuple[PlannedRequest, ...]


def batch_kind_name(rows: int) -> str:
    return f"{rows} rows"


def request_plan(spec: FeatureSpec, *, max_instances: int, seed: int = 11) -> list[Kind]:
    """One-row, batch and bad requests for `spec`; a batch holds BATCH_ROWS rows, or the row limit if lower."""
    rng = random.Random(seed)
    batch_rows = min(BATCH_ROWS, max_instances)
    one_row = tuple(
        PlannedRequest(ONE_ROW, _predict_body([valid_row(spec, rng)]), 200, rows=1) for _ in range(DISTINCT_ONE_ROW)
    )
    batches = tuple(
        PlannedRequest(
            batch_kind_name(batch_rows),
            _predict_body([valid_row(spec, rng) for _ in range(batch_rows)]),
            200,
            rows=batch_rows,
        )
        for _ in range(DISTINCT_BATCHES)
    )
    return [
        Kind(ONE_ROW, WEIGHTS[ONE_ROW], one_row),
        Kind(batch_kind_name(batch_rows), WEIGHTS["batch"], batches),
        Kind(BAD, WEIGHTS[BAD], bad_requests(spec, rng, max_instances=max_instances)),
    ]


def bad_requests(spec: FeatureSpec, rng: random.Random, *, max_instances: int) -> tuple[PlannedRequest, ...]:
    """Requests the API must refuse, each with its documented status (docs/api.md's error table)."""
    row = valid_row(spec, rng)
    first = spec.features[0]
    wrong_type = {**row, first.name: _wrong_type(first)}
    bad = [
        PlannedRequest("malformed JSON", _predict_body([row])[:-3], 400),
        PlannedRequest("unknown feature", _predict_body([{**row, "not_a_feature_of_this_model": 1}]), 422),
        PlannedRequest(f"wrong type for {first.name}", _predict_body([wrong_type]), 422),
        PlannedRequest("no rows", _predict_body([]), 422),
        PlannedRequest(f"over the {max_instances}-row limit", _predict_body([{}] * (max_instances + 1)), 422),
        PlannedRequest("body not an object", json.dumps([row]), 422),
        PlannedRequest("rows under another key", json.dumps({"rows": [row]}), 422),
        PlannedRequest("not JSON media type", _predict_body([row]), 415, content_type="text/plain"),
    ]
    bounded = next((f for f in spec.features if f.valid_max is not None), None)
    if bounded is not None and bounded.valid_max is not None:
        above = {**row, bounded.name: bounded.valid_max * 2 + 1}
        bad.append(PlannedRequest(f"{bounded.name} above its valid range", _predict_body([above]), 422))
    required = next((f for f in spec.features if f.required), None)
    if required is not None:
        missing = {name: value for name, value in row.items() if name != required.name}
        bad.append(PlannedRequest(f"required {required.name} missing", _predict_body([missing]), 422))
    numeric = next((f for f in spec.features if f.type in (FeatureType.NUMBER, FeatureType.INTEGER)), None)
    if numeric is not None:
        text = _predict_body([{**row, numeric.name: 0}]).replace(f'"{numeric.name}": 0', f'"{numeric.name}": NaN')
        bad.append(PlannedRequest(f"NaN for {numeric.name}", text, 422))
    return tuple(bad)


def valid_row(spec: FeatureSpec, rng: random.Random) -> dict[str, Any]:
    """A row every feature of `spec` accepts, drawn within its training range (its domain for categories)."""
    return {feature.name: _valid_value(feature, rng) for feature in spec.features}


def write_plan(kinds: list[Kind], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kinds": [asdict(kind) for kind in kinds]}))


def _valid_value(feature: Feature, rng: random.Random) -> Any:
    if feature.type is FeatureType.CATEGORY:
        return rng.choice(feature.categories or (feature.impute,))
    if feature.type is FeatureType.BOOLEAN:
        return rng.random() < 0.5
    low, high = _sampling_range(feature)
    if feature.type is FeatureType.INTEGER:
        return rng.randint(math.ceil(low), math.floor(high)) if math.ceil(low) <= math.floor(high) else round(low)
    return round(rng.uniform(low, high), feature.decimals)


def _sampling_range(feature: Feature) -> tuple[float, float]:
    """The training range where known, else the valid range, else the imputation value alone."""
    centre = float(feature.impute)
    low = next((v for v in (feature.train_min, feature.valid_min) if v is not None), centre)
    high = next((v for v in (feature.train_max, feature.valid_max) if v is not None), centre)
    if feature.valid_min is not None:
        low = max(low, feature.valid_min)
    if feature.valid_max is not None:
        high = min(high, feature.valid_max)
    return low, high


def _wrong_type(feature: Feature) -> Any:
    if feature.type is FeatureType.CATEGORY:
        return 1  # categories are strings
    if feature.type is FeatureType.BOOLEAN:
        return "yes"
    return "not a number"


def _predict_body(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"instances": rows})
