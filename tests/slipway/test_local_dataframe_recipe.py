"""A recipe written the usual way trains, serves and retrains through the embedded stack `make run` starts.

The recipe returns a pandas DataFrame with string categories, missing values of both kinds and
a boolean, and its pipeline is the most common shape of scikit-learn's documentation: a
ColumnTransformer whose numeric branch imputes the median and scales, and whose text branch
imputes the most frequent string and one-hot encodes. It takes the place of model/recipe.py for
the stack's lifetime (the stack and the retrain steps import `model.recipe` in this process).
"""

from __future__ import annotations

import json
import os
import sys
import types
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.adapters import factory
from slipway.local.retrain_service import RetrainService
from slipway.local.stack import LocalStack
from tests.slipway.stacks import running_stack

pytestmark = pytest.mark.local


def _churn_recipe() -> types.ModuleType:
    rng = np.random.default_rng(11)
    rows = 400
    frame = pd.DataFrame({
        "tenure_months": np.round(rng.uniform(0, 72, rows)),
        "monthly_fee": np.round(rng.uniform(10, 120, rows), 2),
        "contract": rng.choice(["monthly", "one_year", "two_year"], rows),
        "city": rng.choice(["Leeds", "York", "Hull", None], rows, p=[0.4, 0.3, 0.25, 0.05]),
        "paperless": rng.random(rows) < 0.5,
    })  # fmt: skip
    frame.loc[rng.random(rows) < 0.05, "monthly_fee"] = np.nan
    churned = (frame["contract"] == "monthly") & (frame["tenure_months"] < 24) | (rng.random(rows) < 0.1)
    recipe = types.ModuleType("model.recipe")
    recipe.SEED, recipe.TASK, recipe.METRIC = 5, "classification", "accuracy"  # type: ignore[attr-defined]
    recipe.load_data = lambda: (frame, churned.map({True: "churn", False: "stay"}))  # type: ignore[attr-defined]

    def build(seed: int) -> Pipeline:
        numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        words = Pipeline(
            [("impute", SimpleImputer(strategy="most_frequent")), ("encode", OneHotEncoder(handle_unknown="ignore"))]
        )
        prep = ColumnTransformer(
            [
                ("numbers", numbers, make_column_selector(dtype_include="number")),
                ("words", words, ["contract", "city"]),
            ],
            remainder="passthrough",
        )
        return Pipeline([("prep", prep), ("model", RandomForestClassifier(60, random_state=seed))])

    recipe.build = build  # type: ignore[attr-defined]
    return recipe


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved_recipe = sys.modules.get("model.recipe")
    sys.modules["model.recipe"] = _churn_recipe()
    try:
        with running_stack(tmp_path_factory.mktemp("logs")) as local:
            yield local
    finally:
        if saved_recipe is not None:
            sys.modules["model.recipe"] = saved_recipe
        else:
            sys.modules.pop("model.recipe", None)


def _post(stack: LocalStack, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_it_serves_json_rows_with_strings_missing_values_and_unseen_categories(stack: LocalStack) -> None:
    rows = [
        {"tenure_months": 3, "monthly_fee": 80.5, "contract": "monthly", "city": "Leeds", "paperless": True},
        {"tenure_months": 60, "contract": "two_year", "city": None, "paperless": False},  # fee left out, city null
        {"tenure_months": 12, "monthly_fee": 30, "contract": "monthly", "city": "Paris", "paperless": True},
    ]
    status, body = _post(stack, "/predict", {"instances": rows})
    assert status == 200, body
    first, second, third = body["predictions"]
    assert first["fallback"] is None and first["label"] in ("churn", "stay")
    assert set(second["imputed"]) == {"monthly_fee", "city"}
    assert third["out_of_range"] == ["city"], "an unseen city is served and flagged"
    assert first["label"] == "churn" and second["label"] == "stay", "a short monthly contract churns, two years stays"


def test_the_retrain_pipeline_trains_the_same_version_from_the_stored_table(stack: LocalStack) -> None:
    result = stack.service(RetrainService).retrain.run("dataframe recipe")
    assert result.succeeded, (result.error, result.cause)
    pointer = json.loads(
        factory.client("ssm").get_parameter(Name=os.environ["LIVE_POINTER_PARAMETER"])["Parameter"]["Value"]
    )
    assert pointer["version"] == stack.live_version, "same table and seed: the candidate is the live version"
