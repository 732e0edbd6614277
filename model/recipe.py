"""The training recipe: the one file to edit to bring your own model.

Slipway reads these names and nothing else (the recipe contract,
`functions/training/recipe_contract.py`; `slipway check` checks this file
against it without training, and names a missing, misspelt or mistyped one):

- `SEED`: every source of randomness (split, estimator) derives from it.
- `TASK`: "classification" or "regression".
- `METRIC`: the holdout metric the retrain gate compares (see `slipway train --help`).
- `load_data()`: the training table and the target: a pandas DataFrame (or a
  dict of named columns) and a Series or array.
- `FEATURES`: overrides of the feature spec that Slipway derives from the data.
- `CAPTURE_EXCLUDE` (optional, default none): features whose values the
  endpoint never records. They are still required, validated and scored as
  usual, but are left out of the captured rows (with their imputed and
  out-of-range flags), so of the logs those rows travel through and of the drift
  reports, which list them as excluded instead of computing their drift; the
  other features' drift and the live quality from feedback are unaffected.
  Labelled feedback rows lack them, so retraining imputes them there. A name
  that is not a column of `load_data()` stops training. The list travels in
  the bundle's manifest, and changing it makes a new model version.
- `IMPORTANCE_SHARE` (optional): training measures how much each feature
  helps, as the loss of METRIC on the holdout rows when the feature's values
  are shuffled (permutation importance, positive when the feature helps;
  `slipway features` prints it). A feature below a threshold is marked
  unimportant, and training reports what METRIC would be with the unimportant
  ones held constant. The threshold is this share of METRIC's scale: of the
  range 1 for accuracy, roc_auc, f1_macro and r2 (default 0.001), of the
  model's own holdout error for rmse, mae and log_loss (default 0.01, so 1 %
  of a mean absolute error in dollars). `IMPORTANCE_THRESHOLD` sets it in
  METRIC's units instead (one or the other). The report changes no answer and
  no model version.
- `OUTLIER_SHARE` (optional, default 0.01): the share of training rows the
  outlier detector flags. Training fits a robust distance on the encoded
  training rows beside the model; every answer carries its `outlier` score and
  flag, and the monitor counts them (docs/monitoring.md, "Outliers"). It is part
  of the bundle, so changing it makes a new model version.
- `SEGMENTS` (optional, default none): features to compare the model across
  (bias across segments). A category or boolean feature gives one segment per
  training value; a numeric feature is split at its training quartiles, or at
  explicit edges given as a pair: `["sex", ("age", [30, 50])]` gives the
  segments of `sex` and "< 30", "[30, 50)", ">= 50". The monitor reports, per
  segment, the rows, prediction rates, true- and false-positive rates (or mean
  prediction and MAE) and the gaps between segments, and alarms on a wide one
  (docs/monitoring.md). A segment feature must be captured, so it cannot also
  be in CAPTURE_EXCLUDE; an unknown name or bad edges stop training. The list
  travels in the manifest, and changing it makes a new model version.
- `PARITY_TOLERANCE` (optional, default 1e-4): how far the exported ONNX
  graph's probabilities (or, for regression, its values relative to their size)
  may stray from scikit-learn's on the holdout rows; beyond it, or on a
  different label, training stops and names the worst rows.
- `build(seed)`: an unfitted scikit-learn Pipeline.

The pipeline receives a pandas DataFrame with `load_data()`'s columns by name:
numbers as float64 (canonicalised to their precision), categories as strings,
booleans as bool, missing values already imputed the way the endpoint imputes
them. Select columns by name (`ColumnTransformer`, `make_column_selector`),
encode strings with `OneHotEncoder` or `OrdinalEncoder`; every step must be one
scikit-learn exports to ONNX (`slipway train` names a step that is not, before
fitting). The endpoint answers from the same JSON rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42
TASK = "classification"
METRIC = "roc_auc"

# Fields a feature may override: type, precision, valid_min, valid_max,
# train_min, train_max, impute, required, categories.
# The tumour's mean measurements are required; every other feature is
# optional and imputed with its training median when a request leaves it out.
FEATURES: dict[str, dict[str, Any]] = {
    name: {"required": True}
    for name in (
        "mean_radius",
        "mean_texture",
        "mean_perimeter",
        "mean_area",
        "mean_smoothness",
    )
}

# Features never captured for drift, e.g. ["postcode"]; the example data holds nothing personal.
CAPTURE_EXCLUDE: list[str] = []


def load_data() -> tuple[pd.DataFrame, pd.Series]:
    """The Wisconsin breast-cancer data that ships with scikit-learn: 569 rows, 30 features."""
    data = load_breast_cancer(as_frame=True)
    features = data.data.rename(columns=lambda name: name.replace(" ", "_"))
    target = data.target.map(dict(enumerate(data.target_names)))  # "malignant" / "benign"
    return features, target


def build(seed: int) -> Pipeline:
    """Scaled features into a regularised logistic regression."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=1.0, max_iter=5000, random_state=seed)),
        ]
    )
