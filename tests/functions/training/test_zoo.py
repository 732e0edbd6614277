"""The model zoo: common estimators, tasks and feature types, each trained, exported, parity-checked and served.

Like scikit-learn's estimator checks, one contract for every configuration: `train_bundle`
either makes a bundle whose graph matches scikit-learn on the holdout (within the default
tolerance) and that the serving code answers from, identically for a row alone and in a
batch, and whose version repeats for the same data and seed; or it refuses the
configuration before fitting with the message of `check_exportable`. The README's list
of supported estimators is this table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier

from functions.core.errors import BundleError
from functions.core.predictor import Predictor
from functions.training.export import graph_precision
from functions.training.train import DEFAULT_PARITY_TOLERANCE, train_bundle

pytestmark = pytest.mark.unit

ROWS = 240


def _data(task: str, classes: int, kinds: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Synthetic rows: four numbers (one with missing values), and with kinds='mixed' a category and a boolean."""
    rng = np.random.default_rng(7)
    numbers = rng.normal(size=(ROWS, 4)) * [1, 10, 100, 0.1]
    columns: dict[str, Any] = {f"x{i}": np.round(numbers[:, i], 3) for i in range(4)}
    columns["x3"] = np.where(rng.random(ROWS) < 0.1, np.nan, columns["x3"])
    signal = numbers[:, 0] + numbers[:, 1] / 10
    if kinds == "mixed":
        colour = rng.choice(["red", "green", "blue"], ROWS)
        columns["colour"] = np.array([None if rng.random() < 0.05 else c for c in colour], dtype=object)
        columns["member"] = rng.random(ROWS) < 0.5
        signal = signal + (colour == "red") * 1.5 - columns["member"]
    if task == "regression":
        return columns, np.round(signal * 3 + 20, 2)
    edges = np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])
    return columns, np.array(["abcdef"[i] for i in np.digitize(signal, edges)])


def _scaled(model: BaseEstimator) -> Callable[[int], Pipeline]:
    return lambda seed: Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", model)])


def _one_hot(model: BaseEstimator) -> Callable[[int], Pipeline]:
    """Column 4 (colour) one-hot encoded by position, the numbers scaled, the boolean passed through."""
    prep = ColumnTransformer(
        [("numbers", StandardScaler(), [0, 1, 2, 3]), ("colour", OneHotEncoder(handle_unknown="ignore"), [4])],
        remainder="passthrough",
    )
    return lambda seed: Pipeline([("prep", prep), ("model", model)])


def _by_name(model: BaseEstimator, encoder: BaseEstimator | None = None) -> Callable[[int], Pipeline]:
    """Columns selected by name: the numbers imputed and scaled, the colour encoded, the boolean passed through."""
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    colour = encoder or OneHotEncoder(handle_unknown="ignore")
    prep = ColumnTransformer(
        [("numbers", numbers, ["x0", "x1", "x2", "x3"]), ("colour", colour, ["colour"])], remainder="passthrough"
    )
    return lambda seed: Pipeline([("prep", prep), ("model", model)])


# Deterministic LightGBM: one thread order, no log lines.
LIGHTGBM = {"n_estimators": 50, "deterministic": True, "force_row_wise": True, "verbose": -1, "random_state": 0}


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    classes: int
    kinds: str
    build: Callable[[int], BaseEstimator]
    refused: str | None = None  # the refusal's message, for what cannot be exported faithfully


C, R = "classification", "regression"
CASES = [
    Case("logistic, binary", C, 2, "numeric", _scaled(LogisticRegression(max_iter=2000))),
    Case("logistic, multiclass", C, 3, "numeric", _scaled(LogisticRegression(max_iter=2000))),
    Case("logistic, one-hot category", C, 2, "mixed", _one_hot(LogisticRegression(max_iter=2000))),
    Case("SVM with probabilities", C, 2, "numeric", _scaled(SVC(probability=True, random_state=0))),
    Case("k-NN", C, 3, "numeric", _scaled(KNeighborsClassifier())),
    Case("Gaussian naive Bayes", C, 3, "numeric", _scaled(GaussianNB())),
    Case("decision tree", C, 2, "mixed", _one_hot(DecisionTreeClassifier(max_depth=6, random_state=0))),
    Case("random forest after a scaler", C, 2, "numeric", _scaled(RandomForestClassifier(50, random_state=0))),
    Case("extra trees, multiclass", C, 3, "mixed", _one_hot(ExtraTreesClassifier(50, random_state=0))),
    Case("gradient boosting", C, 2, "numeric", _scaled(GradientBoostingClassifier(n_estimators=50, random_state=0))),
    Case("HGB", C, 2, "numeric", _scaled(HistGradientBoostingClassifier(max_iter=50, random_state=0))),
    Case("HGB, multiclass", C, 3, "numeric", _scaled(HistGradientBoostingClassifier(max_iter=50, random_state=0))),
    Case(
        "HGB, by-name ordinal category", C, 2, "mixed",
        _by_name(
            HistGradientBoostingClassifier(max_iter=50, random_state=0),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        ),
    ),
    Case("LightGBM, binary, no pipeline", C, 2, "numeric", lambda seed: LGBMClassifier(**LIGHTGBM)),
    Case("LightGBM, multiclass, by name", C, 3, "mixed", _by_name(LGBMClassifier(**LIGHTGBM))),
    Case("LightGBM regressor", R, 0, "numeric", _scaled(LGBMRegressor(**LIGHTGBM))),
    Case("random forest, by-name one-hot", C, 2, "mixed", _by_name(RandomForestClassifier(50, random_state=0))),
    Case("MLP", C, 2, "numeric", _scaled(MLPClassifier((16,), max_iter=2000, random_state=0))),
    Case("ridge", R, 0, "mixed", _one_hot(Ridge())),
    Case("random forest regressor", R, 0, "numeric", _scaled(RandomForestRegressor(50, random_state=0))),
    Case("GB regressor", R, 0, "numeric", _scaled(GradientBoostingRegressor(n_estimators=50, random_state=0))),
    Case("HGB regressor", R, 0, "numeric", _scaled(HistGradientBoostingRegressor(max_iter=50, random_state=0))),
    Case("SVR (float32 graph)", R, 0, "numeric", _scaled(SVR())),
    Case("k-NN regressor", R, 0, "numeric", _scaled(KNeighborsRegressor())),
    Case(
        "HGB, categorical splits", C, 2, "mixed",
        lambda seed: HistGradientBoostingClassifier(categorical_features=[4], random_state=seed),
        refused="does not export categorical splits",
    ),
]  # fmt: skip


def _recipe(case: Case) -> Any:
    data = _data(case.task, case.classes, case.kinds)
    metric = "accuracy" if case.task == "classification" else "rmse"
    return types.SimpleNamespace(
        __name__=f"zoo.{case.name}", SEED=0, TASK=case.task, METRIC=metric, load_data=lambda: data, build=case.build
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_zoo(case: Case) -> None:
    recipe = _recipe(case)
    if case.refused:
        with pytest.raises(BundleError, match=case.refused):
            train_bundle(recipe)
        return

    bundle = train_bundle(recipe)
    parity = bundle.manifest.parity
    print(f"{case.name}: {graph_precision(bundle.onnx_bytes)} graph, max difference {parity.max_abs_diff:.2g}")
    assert parity.labels_equal in (True, None) and parity.max_abs_diff <= DEFAULT_PARITY_TOLERANCE

    columns, _ = recipe.load_data()
    rows = [{name: _plain(values[i]) for name, values in columns.items()} for i in range(20)]
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    together = predictor.score(predictor.encode(rows))
    assert all(answer["fallback"] is None for answer in together)
    alone = [predictor.score(predictor.encode([row]))[0] for row in rows]
    assert alone == together, "a row alone answers as in a batch"
    assert train_bundle(recipe).version == bundle.version, "same data and seed, same version"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def test_the_readme_lists_exactly_the_zoo_configurations_and_their_outcome() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    table = readme.split("### Supported estimators", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    listed = {cells[0].strip(): cells[3].strip() for cells in rows[1:]}
    expected = {case.name: f"refused before fitting: {case.refused}" if case.refused else "served" for case in CASES}
    assert listed == expected


def test_a_lightgbm_version_repeats_in_another_process() -> None:
    """skl2onnx orders a LightGBM graph's opset imports by string hashing; these two hash seeds gave two orders."""
    script = (
        "from tests.functions.training.test_zoo import CASES, _recipe\n"
        "from functions.training.train import train_bundle\n"
        "[case] = [c for c in CASES if c.name == 'LightGBM regressor']\n"
        "print(train_bundle(_recipe(case)).version)\n"
    )
    root = Path(__file__).parents[3]
    versions = {
        subprocess.run(
            [sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        for seed in ("5", "6")
    }  # fmt: skip
    assert len(versions) == 1, versions
