"""The training recipe: the one file to edit to bring your own model.

Slipway calls these names and nothing else:

- `SEED`: every source of randomness (split, estimator) derives from it.
- `TASK`: "classification" or "regression".
- `METRIC`: the holdout metric the retrain gate compares (see `slipway train --help`).
- `load_data()`: the training table as named columns, and the target.
- `FEATURES`: overrides of the feature spec that Slipway derives from the data.
- `build(seed)`: an unfitted scikit-learn Pipeline.

The pipeline receives one float matrix whose columns follow `load_data()`'s
order: numbers canonicalised to their precision, missing values already
imputed, categories as integer codes (index in the training domain, -1 for
unseen) and booleans as 0/1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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


def load_data() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The Wisconsin breast-cancer data that ships with scikit-learn: 569 rows, 30 features."""
    data = load_breast_cancer()
    names = [name.replace(" ", "_") for name in data.feature_names]
    columns = {name: data.data[:, i] for i, name in enumerate(names)}
    target = np.asarray(data.target_names)[data.target]  # "malignant" / "benign"
    return columns, target


def build(seed: int) -> Pipeline:
    """Scaled features into a regularised logistic regression."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=1.0, max_iter=5000, random_state=seed)),
        ]
    )
