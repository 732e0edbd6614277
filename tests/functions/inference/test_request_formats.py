"""The request formats users already send: instances, MLflow's dataframe_records and dataframe_split, and CSV.

Every shape goes through the same validation, canonicalisation and row limit, and identical rows get
identical answers; a malformed shape is a 4xx naming what is wrong.
"""

from __future__ import annotations

import csv
import io
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.adapters import factory
from functions.inference.v2_routes import model_name_of
from functions.training.train import Bundle, train_bundle
from stage.names import ResourceNames
from tests.conftest import Invoke

pytestmark = pytest.mark.handler


def _rows(bundle: Bundle, count: int) -> list[dict[str, Any]]:
    spec = bundle.manifest.feature_spec
    return [
        {f.name: round((f.train_min or 0) + (i + 1) * ((f.train_max or 1) - (f.train_min or 0)) / (count + 2), 3)
         for f in spec.features}
        for i in range(count)
    ]  # fmt: skip


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_every_shape_gives_the_same_answers_for_the_same_rows(invoke: Invoke, live_bundle: Bundle) -> None:
    rows = _rows(live_bundle, 5)
    rows[1].pop("mean_symmetry")  # an optional feature left out: imputed in every shape
    columns = list(rows[0])
    split = {
        "columns": columns,
        "data": [[row.get(name) for name in columns] for row in rows],
        "index": [9, 8, 7, 6, 5],
    }

    answers = [
        invoke("POST", "/predict", {"instances": rows}),
        invoke("POST", "/predict", {"dataframe_records": rows}),
        invoke("POST", "/predict", {"dataframe_split": split}),
        invoke("POST", "/predict", raw=_csv([{n: r.get(n, "") for n in columns} for r in rows]),
               headers={"Content-Type": "text/csv; charset=utf-8"}),
    ]  # fmt: skip

    assert [status for status, _ in answers] == [200] * 4, answers
    first = answers[0][1]["predictions"]
    assert first[1]["imputed"] == ["mean_symmetry"]
    for _, body in answers[1:]:
        assert body["predictions"] == first


def test_a_csv_body_is_validated_like_json(invoke: Invoke, live_bundle: Bundle) -> None:
    rows = _rows(live_bundle, 2)
    rows[1]["mean_radius"] = "wide"
    status, body = invoke("POST", "/predict", raw=_csv(rows), headers={"Content-Type": "text/csv"})

    assert status == 422
    assert body["errors"][0]["loc"] == ["instances", 1, "mean_radius"]


def test_a_csv_line_with_the_wrong_number_of_fields_is_named(invoke: Invoke, live_bundle: Bundle) -> None:
    text = _csv(_rows(live_bundle, 2)) + "1,2,3\n"
    status, body = invoke("POST", "/predict", raw=text, headers={"Content-Type": "text/csv"})

    assert status == 400
    assert body["errors"][0]["type"] == "invalid_csv" and "line 4: 3 fields, the header has 30" in body["message"]


def test_csv_is_for_the_routes_that_take_rows(invoke: Invoke, live_bundle: Bundle) -> None:
    status, body = invoke("POST", "/feedback", raw="request_id,label\nx,y\n", headers={"Content-Type": "text/csv"})

    assert status == 415 and "the body must be application/json, got 'text/csv'" in body["message"]


def test_async_jobs_take_the_same_shapes(
    invoke_factory: Callable[[], Invoke], live_bundle: Bundle, names: ResourceNames, requests_queue: str
) -> None:
    invoke = invoke_factory()
    rows = _rows(live_bundle, 3)
    columns = list(rows[0])
    split = {"columns": columns, "data": [[row[name] for name in columns] for row in rows]}

    status, accepted = invoke("POST", "/predict/async", {"dataframe_split": split})

    assert status == 202, accepted
    stored = factory.job_store(names.artifacts_bucket).get_request(accepted["job_id"])
    assert stored is not None and stored.instances == rows


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "exactly one of instances, dataframe_records, dataframe_split, inputs; got 0"),
        ({"instances": [{"mean_radius": 12.0}], "dataframe_records": [{"mean_radius": 12.0}]}, "got 2"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0]]}}, "must hold 2 values, one per column"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1.0, 2.0]]}}, "names a feature twice"),
        ({"dataframe_split": {"columns": [], "data": [[]]}}, "at least 1 item"),
        ({"dataframe_records": []}, "at least 1 item"),
    ],
)
def test_a_malformed_shape_is_a_422_that_says_what_is_wrong(
    invoke: Invoke, live_bundle: Bundle, body: dict[str, Any], expected: str
) -> None:
    status, answer = invoke("POST", "/predict", body)

    assert status == 422, answer
    assert expected in str(answer), answer


def test_the_row_limit_holds_in_every_shape(invoke: Invoke, live_bundle: Bundle) -> None:
    rows = _rows(live_bundle, 1) * 1001
    columns = list(rows[0])
    split = {"columns": columns, "data": [[row[name] for name in columns] for row in rows]}
    for body in ({"instances": rows}, {"dataframe_records": rows}, {"dataframe_split": split}):
        status, answer = invoke("POST", "/predict", body)
        assert status == 422 and "at most 1000 items" in str(answer), (list(body), answer)
    status, answer = invoke("POST", "/predict", raw=_csv(rows), headers={"Content-Type": "text/csv"})
    assert status == 422 and "at most 1000 items" in str(answer)


def _coded_recipe() -> types.ModuleType:
    """Plan codes that look like numbers ('01', '02', '10') and a boolean, as CSV exports write them."""
    rng = np.random.default_rng(3)
    rows = 200
    plan = rng.choice(["01", "02", "10"], rows)
    member = rng.random(rows) < 0.5
    age = np.round(rng.uniform(18, 80, rows))
    target = np.where((plan == "10") ^ member, "churn", "stay")
    recipe = types.ModuleType("tmp_coded_recipe")
    recipe.SEED, recipe.TASK, recipe.METRIC = 3, "classification", "accuracy"  # type: ignore[attr-defined]
    recipe.load_data = lambda: ({"plan": plan, "member": member, "age": age}, target)  # type: ignore[attr-defined]
    prep = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]), ("age", StandardScaler(), ["age"])],
        remainder="passthrough",
    )
    recipe.build = lambda seed: Pipeline([("prep", prep), ("model", LogisticRegression())])  # type: ignore[attr-defined]
    return recipe


def test_csv_cells_are_typed_by_the_live_model_s_features(registry: Any, invoke_factory: Callable[[], Invoke]) -> None:
    coded = train_bundle(_coded_recipe())
    registry.register(coded.manifest, coded.onnx_bytes)
    registry.promote(coded.version, "test")
    invoke = invoke_factory()
    rows = [{"plan": "01", "member": True, "age": 30.0}, {"plan": "10", "member": False, "age": 61.0}]
    status, as_json = invoke("POST", "/predict", {"instances": rows})
    assert status == 200, as_json
    csv_body = "plan,member,age\n01,True,30\n10,false,61\n"
    status, as_csv = invoke("POST", "/predict", raw=csv_body, headers={"Content-Type": "text/csv"})
    assert status == 200, as_csv
    assert as_csv["predictions"] == as_json["predictions"]
    assert not any(p["out_of_range"] for p in as_csv["predictions"]), "'01' is the known plan, not the number 1"

    status, refused = invoke(
        "POST", "/predict", raw="plan,member,age\n01,maybe,30\n", headers={"Content-Type": "text/csv"}
    )
    assert status == 422 and "member" in str(refused), refused

    # The document names the training categories without refusing others: an unseen one is served, flagged.
    plan = invoke("GET", "/openapi.json")[1]["components"]["schemas"]["Instance"]["properties"]["plan"]
    assert plan["examples"] == ["01", "02", "10"] and "enum" not in plan and "string" in plan["type"]
    status, unseen = invoke("POST", "/predict", {"instances": [{**rows[0], "plan": "99"}]})
    assert status == 200 and unseen["predictions"][0]["out_of_range"] == ["plan"], unseen

    # The protocol's tensors carry the same types: a category is BYTES (strings), a boolean BOOL.
    name = model_name_of(coded.manifest)
    metadata = invoke("GET", f"/v2/models/{name}")[1]
    types_of = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert types_of["plan"] == "BYTES" and types_of["member"] == "BOOL" and types_of["age"] in {"FP64", "INT64"}
    assert [o["datatype"] for o in metadata["outputs"]] == ["BYTES", "FP64"]
    inputs = [
        {"name": feature, "datatype": types_of[feature], "shape": [2], "data": [row[feature] for row in rows]}
        for feature in types_of
    ]
    status, answer = invoke("POST", f"/v2/models/{name}/infer", {"inputs": inputs})
    assert status == 200, answer
    labels, probabilities = answer["outputs"]
    assert labels["data"] == [p["label"] for p in as_json["predictions"]]
    assert probabilities["parameters"] == {"classes": ["churn", "stay"]}
    assert probabilities["data"] == [p["probabilities"][c] for p in as_json["predictions"] for c in ("churn", "stay")]
