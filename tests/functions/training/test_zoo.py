"""The model zoo: common estimators, tasks and feature types, each trained, exported, parity-checked and served.

Like scikit-learn's estimator checks, one contract for every configuration: `train_bundle`
either makes a bundle whose graph matches scikit-learn on the holdout (within the default
tolerance) and that the serving code answers from, identically for a row alone and in a
batch, and whose version repeats for the same data and seed; or it refuses the
configuration before fitting with the message of `check_exportable`.

docs/models.md's "Supported estimators" table is this zoo: `python -m tests.functions.training.test_zoo`
(`make zoo`) trains every configuration and writes the table between its markers, each row
with its parity figure or its refusal message; the tests check that the table lists exactly
these configurations, each served one's graph precision and every refusal's message as they are.
"""

from __future__ import annotations

import os
import re
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
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import SelectKBest, SelectPercentile, chi2, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier, XGBRegressor

from functions.core.errors import BundleError
from functions.core.predictor import Predictor
from functions.training.export import graph_precision
from functions.training.recipe_contract import DEFAULT_PARITY_TOLERANCE
from functions.training.train import train_bundle

pytestmark = pytest.mark.unit

ROWS = 240
GRADES = ["low", "mid", "high"]
NUMBERS, TEXT = ["x0", "x1", "x2", "x3"], ["colour", "grade", "plan"]
EXPLICIT = [["blue", "green", "red"], GRADES, ["basic", "plus"]]  # purple, rare, is left to unknown_value


def _data(task: str, classes: int, kinds: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Synthetic rows: four numbers (one with missing values), and with kinds='mixed' a category and a boolean;
    kinds='text' is the text columns of 'gallery' alone;
    kinds='gallery' has a rare colour, an ordinal grade (both with missing values), a plan of two values and a
    skewed income instead."""
    if kinds == "text":
        columns, target = _data(task, classes, "gallery")
        return {name: columns[name] for name in TEXT}, target
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
    if kinds == "gallery":
        colour = rng.choice(["red", "green", "blue", "purple"], ROWS, p=[0.35, 0.3, 0.3, 0.05])
        grade = rng.choice(GRADES, ROWS)
        plan = rng.choice(["basic", "plus"], ROWS)
        columns["colour"] = np.array([None if rng.random() < 0.05 else c for c in colour], dtype=object)
        columns["grade"] = np.array([None if rng.random() < 0.05 else g for g in grade], dtype=object)
        columns["plan"] = plan.astype(object)
        columns["member"] = rng.random(ROWS) < 0.5
        columns["income"] = np.round(rng.lognormal(3, 1, ROWS), 2)
        rank = np.array([GRADES.index(g) for g in grade])
        signal = signal + (colour == "red") * 1.5 + rank * 0.8 + (plan == "plus") - columns["member"]
        signal = signal + np.log1p(columns["income"]) / 2
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


def _gallery(
    model: BaseEstimator,
    *,
    numbers: BaseEstimator | None = None,
    text: BaseEstimator | None = None,
    select: BaseEstimator | None = None,
    columns: tuple[Any, Any] = (NUMBERS, TEXT),
) -> Callable[[int], Pipeline]:
    """The shape of scikit-learn's "Column Transformer with Mixed Types": numbers imputed (median) and scaled,
    text imputed (most frequent) and one-hot encoded, each branch by name; the boolean passed through."""
    numeric = numbers or Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = text or Pipeline(
        [("impute", SimpleImputer(strategy="most_frequent")), ("encode", OneHotEncoder(handle_unknown="ignore"))]
    )
    prep = ColumnTransformer([("num", numeric, columns[0]), ("cat", categorical, columns[1])], remainder="passthrough")
    steps = [("pre", prep), *([("select", select)] if select is not None else []), ("model", model)]
    return lambda seed: Pipeline(steps)


def _text(encoder: BaseEstimator, *, impute: BaseEstimator | None = None) -> Pipeline:
    return Pipeline([("impute", impute or SimpleImputer(strategy="most_frequent")), ("encode", encoder)])


def _numbers(*after: BaseEstimator) -> Pipeline:
    return Pipeline([("impute", SimpleImputer(strategy="median")), *((type(a).__name__, a) for a in after)])


# Deterministic LightGBM: one thread order, no log lines.
LIGHTGBM = {"n_estimators": 50, "deterministic": True, "force_row_wise": True, "verbose": -1, "random_state": 0}
# XGBoost's histogram method is deterministic for a fixed thread count.
XGBOOST = {"n_estimators": 50, "max_depth": 4, "n_jobs": 1, "random_state": 0}
GALLERY_ONE_HOT = Pipeline(
    [("encoder", OneHotEncoder(handle_unknown="ignore")), ("selector", SelectPercentile(chi2, percentile=50))]
)


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
        "mixed types, scikit-learn's example", C, 2, "gallery",
        _gallery(LogisticRegression(max_iter=2000), text=GALLERY_ONE_HOT),
    ),
    Case(
        "mixed types, make_column_selector", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            text=GALLERY_ONE_HOT,
            columns=(make_column_selector(dtype_include="number"), make_column_selector(dtype_include=object)),
        ),
    ),
    Case(
        "mixed types, make_column_selector, regression", R, 0, "gallery",
        _gallery(
            HistGradientBoostingRegressor(max_iter=50, random_state=0),
            columns=(make_column_selector(dtype_include="number"), make_column_selector(dtype_include=object)),
        ),
    ),
    Case(
        "mixed types, selector for pandas' category dtype", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            columns=(make_column_selector(dtype_exclude="category"), make_column_selector(dtype_include="category")),
        ),
        refused="categories reach the pipeline as strings",
    ),
    Case("imputers on both branches, forest", C, 2, "gallery", _gallery(RandomForestClassifier(50, random_state=0))),
    Case("imputers on both branches, ridge", R, 0, "gallery", _gallery(Ridge())),
    Case(
        "text imputed with a constant", C, 3, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            text=_text(
                OneHotEncoder(handle_unknown="ignore"), impute=SimpleImputer(strategy="constant", fill_value="none")
            ),
        ),
    ),
    Case(
        "text imputer alone, before one-hot", C, 2, "text",
        lambda seed: Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
            ("model", LogisticRegression(max_iter=2000)),
        ]),
    ),
    Case(
        "one-hot, drop if binary", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000), text=_text(OneHotEncoder(drop="if_binary", handle_unknown="ignore"))
        ),
    ),
    Case(
        "one-hot, drop if binary, regression", R, 0, "gallery",
        _gallery(Ridge(), text=_text(OneHotEncoder(drop="if_binary", handle_unknown="ignore"))),
    ),
    Case(
        "one-hot, infrequent categories", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            text=_text(OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.1, max_categories=3)),
        ),
        refused="does not export infrequent categories",
    ),
    Case(
        "ordinal, explicit categories", R, 0, "gallery",
        _gallery(
            HistGradientBoostingRegressor(max_iter=50, random_state=0),
            text=_text(OrdinalEncoder(categories=EXPLICIT, handle_unknown="use_encoded_value", unknown_value=-1)),
        ),
    ),
    Case(
        "ordinal, explicit categories, classifier", C, 3, "gallery",
        _gallery(
            RandomForestClassifier(51, random_state=0),
            text=_text(OrdinalEncoder(categories=EXPLICIT, handle_unknown="use_encoded_value", unknown_value=-1)),
        ),
    ),
    Case(
        "k-bins discretizer, sparse one-hot", C, 2, "gallery",
        _gallery(LogisticRegression(max_iter=2000), numbers=_numbers(KBinsDiscretizer(n_bins=4, random_state=0))),
        refused="cannot export its sparse output",
    ),
    Case(
        "k-bins discretizer, dense one-hot", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            numbers=_numbers(KBinsDiscretizer(n_bins=4, encode="onehot-dense", random_state=0)),
        ),
    ),
    Case(
        "k-bins discretizer, ordinal", R, 0, "gallery",
        _gallery(Ridge(), numbers=_numbers(KBinsDiscretizer(n_bins=4, encode="ordinal", random_state=0))),
    ),
    Case(
        "polynomial features", C, 2, "gallery",
        _gallery(LogisticRegression(max_iter=2000), numbers=_numbers(PolynomialFeatures(2), StandardScaler())),
    ),
    Case("polynomial features, ridge", R, 0, "gallery", _gallery(Ridge(), numbers=_numbers(PolynomialFeatures(2)))),
    Case(
        "SelectKBest", C, 3, "gallery", _gallery(LogisticRegression(max_iter=2000), select=SelectKBest(f_classif, k=6))
    ),
    Case("SelectPercentile", R, 0, "gallery", _gallery(Ridge(), select=SelectPercentile(f_regression, percentile=50))),
    Case(
        "target encoder", C, 2, "gallery",
        _gallery(LogisticRegression(max_iter=2000), text=_text(TargetEncoder(random_state=0))),
    ),
    Case(
        "target encoder, regression", R, 0, "gallery",
        _gallery(RandomForestRegressor(50, random_state=0), text=_text(TargetEncoder(random_state=0))),
    ),
    Case(
        "log1p", R, 0, "gallery",
        _gallery(
            Ridge(), numbers=_numbers(FunctionTransformer(np.log1p), StandardScaler()), columns=(["income"], TEXT)
        ),
    ),
    Case(
        "log1p, classifier", C, 2, "gallery",
        _gallery(
            LogisticRegression(max_iter=2000),
            numbers=_numbers(FunctionTransformer(np.log1p), StandardScaler()),
            columns=(["income"], TEXT),
        ),
    ),
    Case(
        "a function of the recipe's own", R, 0, "gallery",
        _gallery(Ridge(), numbers=_numbers(FunctionTransformer(np.cbrt)), columns=(["income"], TEXT)),
        refused=r"FunctionTransformer\(cbrt\), which has no ONNX converter",
    ),
    Case("XGBoost, binary", C, 2, "gallery", _gallery(XGBClassifier(**XGBOOST))),
    Case("XGBoost, multiclass", C, 3, "gallery", _gallery(XGBClassifier(**XGBOOST))),
    Case("XGBoost, multiclass, no pipeline", C, 3, "numeric", lambda seed: XGBClassifier(**XGBOOST)),
    Case("XGBoost regressor", R, 0, "gallery", _gallery(XGBRegressor(**XGBOOST))),
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
    said = readme_outcomes()[case.name][2]
    if case.refused:
        with pytest.raises(BundleError, match=case.refused) as refused:
            train_bundle(recipe)
        assert said == f"refused before fitting: {refused.value}", "the models page quotes the refusal as it is"
        return

    bundle = train_bundle(recipe)
    parity = bundle.manifest.parity
    print(f"{case.name}: {graph_precision(bundle.onnx_bytes)} graph, max difference {parity.max_abs_diff:.2g}")
    assert parity.labels_equal in (True, None) and parity.max_abs_diff <= DEFAULT_PARITY_TOLERANCE
    assert said.startswith(f"served: {graph_precision(bundle.onnx_bytes)} graph"), "the models page names the graph"

    columns, _ = recipe.load_data()
    rows = [{name: _plain(values[i]) for name, values in columns.items()} for i in range(20)]
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    together = predictor.score(predictor.encode(rows))
    assert all(answer["fallback"] is None for answer in together)
    alone = [predictor.score(predictor.encode([row]))[0] for row in rows]
    assert alone == together, "a row alone answers as in a batch"
    if "colour" in columns:  # a missing category is imputed, one training never saw is answered and flagged
        missing, unseen = {**rows[0], "colour": None}, {**rows[0], "colour": "ultraviolet"}
        answers = predictor.score(predictor.encode([missing, unseen]))
        assert [answer["fallback"] for answer in answers] == [None, None]
        assert "colour" in answers[0]["imputed"] and "colour" in answers[1]["out_of_range"]
    assert train_bundle(recipe).version == bundle.version, "same data and seed, same version"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


MODELS_PAGE = Path(__file__).parents[3] / "docs" / "models.md"
TABLE_START = "<!-- python -m tests.functions.training.test_zoo: from here -->"
TABLE_END = "<!-- python -m tests.functions.training.test_zoo: to here -->"
TASKS = {(C, 2): "binary", (C, 3): "3 classes", (R, 0): "regression"}
DATA = {
    "numeric": "numbers, missing values",
    "mixed": "numbers, a string category, a boolean, missing values",
    "gallery": "numbers, three text columns (a rare value; an ordinal), a boolean, missing numbers and text",
    "text": "three text columns (a rare value; an ordinal), missing text",
}
_SERVED = re.compile(r"served: (float64|float32) graph, parity ([0-9.e+-]+)")


def outcome(case: Case) -> str:
    """The table's outcome cell for a case, from training it: its graph and parity, or its refusal message."""
    try:
        bundle = train_bundle(_recipe(case))
    except BundleError as exc:
        return f"refused before fitting: {exc}"
    return f"served: {graph_precision(bundle.onnx_bytes)} graph, parity {bundle.manifest.parity.max_abs_diff:.1g}"


def table(outcomes: dict[str, str]) -> str:
    """The table of the zoo, one row per case."""
    rows = [
        f"| {case.name} | {TASKS[case.task, case.classes]} | {DATA[case.kinds]} | {outcomes[case.name]} |"
        for case in CASES
    ]
    return "\n".join(["| Configuration | Task | Data | Outcome |", "|---|---|---|---|", *rows])


def readme_outcomes() -> dict[str, list[str]]:
    """Each row of docs/models.md's table by configuration: its task, data and outcome cells."""
    readme = MODELS_PAGE.read_text()
    block = readme.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    rows = [line.split(" | ") for line in block.strip().splitlines()[2:]]
    return {cells[0].removeprefix("| "): [*cells[1:3], cells[3].removesuffix(" |")] for cells in rows}


def test_the_models_page_lists_exactly_the_zoo_configurations_and_their_outcome() -> None:
    listed = readme_outcomes()

    assert list(listed) == [case.name for case in CASES]
    for case in CASES:
        task, data, said = listed[case.name]
        assert (task, data) == (TASKS[case.task, case.classes], DATA[case.kinds]), case.name
        served = _SERVED.fullmatch(said)
        if case.refused:
            assert said.startswith("refused before fitting: ") and re.search(case.refused, said), case.name
        else:
            assert served is not None and float(served.group(2)) <= DEFAULT_PARITY_TOLERANCE, case.name


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


if __name__ == "__main__":
    text = MODELS_PAGE.read_text()
    head, start, rest = text.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not (start and end):
        raise SystemExit(f"docs/models.md has no block between {TABLE_START!r} and {TABLE_END!r}")
    MODELS_PAGE.write_text(f"{head}{start}\n{table({case.name: outcome(case) for case in CASES})}\n{end}{tail}")
    print(f"docs/models.md's table of {len(CASES)} zoo configurations rewritten")
