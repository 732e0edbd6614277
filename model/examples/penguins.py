"""A second example: a penguin's sex from its measurements, monitored per species.

The Palmer penguins (344 birds of three species on three islands of the Palmer
Archipelago, Antarctica, measured 2007-2009; Gorman, Williams and Fraser 2014;
public domain, through the `palmerpenguins` package). It shows what the breast-cancer
example cannot: a DataFrame with string categories and missing values, and a
categorical segment feature. The sexes differ in size by a different margin in each
species, so the question "does the model work as well for every species?" is a real
one: `SEGMENTS = ["species"]` makes the monitor answer it from served traffic and
feedback (docs/monitoring.md, "Bias across segments"). `slipway demo` runs it after
the main example.

To use it as a stage's recipe, set `"recipe": "model.examples.penguins"` in that
stage of `cdk.json` (`slipway check --stage <stage>` checks it), and add
`palmerpenguins==0.1.6` to `model/requirements.txt` for the Lambda training package
(its data ships in that package; Slipway's own environment has it already).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEED = 7
TASK = "classification"
METRIC = "roc_auc"
FEATURES: dict[str, dict[str, Any]] = {"species": {"required": True}}
CAPTURE_EXCLUDE: list[str] = []
# The monitor's per-species figures and gaps; the positive class is the second in order: "male".
SEGMENTS = ["species"]


def load_data() -> tuple[pd.DataFrame, pd.Series]:
    """The 333 birds whose sex was recorded; the year of the measurement is not a feature."""
    frame = load_penguins()
    frame = frame[frame["sex"].notna()].reset_index(drop=True)
    target = frame.pop("sex")
    return frame.drop(columns=["year"]), target


def build(seed: int) -> Pipeline:
    """Scaled measurements and one-hot species and island into a logistic regression."""
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    prep = ColumnTransformer(
        [
            ("numbers", numbers, make_column_selector(dtype_include="number")),
            ("places", OneHotEncoder(handle_unknown="ignore"), ["species", "island"]),
        ]
    )
    return Pipeline([("prep", prep), ("classify", LogisticRegression(C=1.0, max_iter=2000, random_state=seed))])
