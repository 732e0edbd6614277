"""The training table as data scientists hold it: a pandas DataFrame in, a typed DataFrame to the pipeline.

`load_data()` may return a DataFrame (and a Series or array target) or, as before, a
dict of named columns. Either way the pipeline `build()` returns is fitted on a
DataFrame with the spec's columns by name: numbers (and integers) as float64 holding
their canonical values rounded to float32 (what the graph receives, see
`functions.core.predictor.GraphInputs`), categories as strings, booleans as bool,
missing values imputed by Slipway exactly as serving imputes them (the `imputed` flag
keeps its meaning; a SimpleImputer in the pipeline then has nothing left to do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from functions.core.errors import RecipeError
from functions.core.features import FeatureSpec, FeatureType


def as_table(columns: Any, target: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`load_data()`'s answer as named columns and a target array, whether it gave a DataFrame or a dict."""
    if isinstance(columns, pd.DataFrame):
        names = [str(name) for name in columns.columns]
        if len(set(names)) != len(names):
            raise RecipeError(f"load_data()'s DataFrame has repeated column names: {names}")
        table = {str(name): _column(columns[name]) for name in columns.columns}
    elif isinstance(columns, Mapping):
        table = {str(name): np.asarray(values) for name, values in columns.items()}
    else:
        raise RecipeError(
            "load_data() must return (features, target) with features a pandas DataFrame or a dict of named "
            f"columns; got {type(columns).__name__}"
        )
    labels = target.to_numpy() if isinstance(target, pd.Series | pd.DataFrame) else np.asarray(target)
    if labels.ndim == 2 and labels.shape[1] == 1:  # a one-column DataFrame or array
        labels = labels[:, 0]
    return table, labels


def _column(series: pd.Series) -> np.ndarray:
    """A column with missing values as None (text, categories) or NaN (numbers), never pandas' NA or NaT."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        if series.isna().any() and not pd.api.types.is_float_dtype(series.dtype):
            return series.astype("float64").to_numpy()
        return series.to_numpy()
    values = series.astype(object).to_numpy()
    return np.array([None if _missing(value) else value for value in values], dtype=object)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def model_frame(spec: FeatureSpec, canonical: np.ndarray, texts: Mapping[int, list[str]]) -> pd.DataFrame:
    """The DataFrame the pipeline is fitted on and scored with: the spec's columns by name and type."""
    values = np.asarray(canonical, dtype=np.float32)
    data: dict[str, Any] = {}
    for index, feature in enumerate(spec.features):
        if feature.type is FeatureType.CATEGORY:
            data[feature.name] = pd.Series(texts[index], dtype=object)
        elif feature.type is FeatureType.BOOLEAN:
            data[feature.name] = values[:, index] == 1
        else:
            data[feature.name] = values[:, index].astype(np.float64)
    return pd.DataFrame(data)
