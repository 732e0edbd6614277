"""The outlier detector: fitted with the model, in its graph, flagging rows unlike the training data
even when every one of their values lies inside its training range."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.core.errors import RecipeError
from functions.core.predictor import OUTLIER_INPUT, OUTLIER_OUTPUT, Predictor
from functions.training import outliers
from functions.training.train import Bundle, load_recipe, load_table, train_bundle

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def predictor(bundle: Bundle) -> Predictor:
    return Predictor(bundle.manifest, bundle.onnx_bytes)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    columns, _ = load_table(load_recipe())
    return pd.DataFrame(columns)


def _flags(predictor: Predictor, rows: list[dict[str, Any]]) -> list[bool]:
    return [p["outlier"]["flag"] for p in predictor.score(predictor.encode(rows))]


def test_the_bundle_holds_the_detector_in_its_graph_and_manifest(bundle: Bundle, predictor: Predictor) -> None:
    detector = bundle.manifest.outliers
    assert detector is not None and detector.method == "minimum_covariance_determinant"
    assert detector.share == outliers.DEFAULT_OUTLIER_SHARE
    assert list(detector.features) == bundle.manifest.feature_spec.names and detector.dimensions == 30
    assert 0 < detector.training_flagged <= detector.share
    session = predictor._session
    assert OUTLIER_INPUT in {i.name for i in session.get_inputs()}
    assert session.get_outputs()[-1].name == OUTLIER_OUTPUT


def test_training_like_rows_are_rarely_flagged(bundle: Bundle, predictor: Predictor, table: pd.DataFrame) -> None:
    flags = _flags(predictor, table.to_dict("records"))

    assert np.mean(flags) < 0.02  # the declared 1 % of training rows, and the holdout's share
    assert bundle.manifest.outliers is not None and bundle.manifest.outliers.holdout_flagged < 0.05


def test_an_in_range_row_whose_combination_is_implausible_is_flagged(predictor: Predictor, table: pd.DataFrame) -> None:
    """The point of the detector: each value is inside its training range, and none is flagged out of range,
    but a tumour with a large radius and a small area does not exist in the training data."""
    row = table.iloc[0].to_dict()
    row["mean_radius"] = float(table["mean_radius"].quantile(0.95))
    row["mean_area"] = float(table["mean_area"].quantile(0.05))

    (answer,) = predictor.score(predictor.encode([row]))

    assert answer["out_of_range"] == []
    assert answer["outlier"]["flag"] is True and answer["outlier"]["score"] > 1
    typical = predictor.score(predictor.encode([table.iloc[0].to_dict()]))[0]["outlier"]
    assert typical["flag"] is False and typical["score"] < 1


def test_rows_drawn_feature_by_feature_from_the_training_values_are_flagged(
    predictor: Predictor, table: pd.DataFrame
) -> None:
    """Every value a real training value, the correlations between them broken."""
    rng = np.random.default_rng(3)
    rows = pd.DataFrame({name: rng.choice(table[name].to_numpy(), 200) for name in table.columns})

    answers = predictor.score(predictor.encode(rows.to_dict("records")))

    assert all(a["out_of_range"] == [] for a in answers)
    assert np.mean([a["outlier"]["flag"] for a in answers]) > 0.8


def test_the_detector_is_deterministic(bundle: Bundle) -> None:
    again = train_bundle(load_recipe())

    assert again.onnx_bytes == bundle.onnx_bytes and again.manifest.outliers == bundle.manifest.outliers
    assert again.version == bundle.version


def _mixed_recipe(**extra: Any) -> Any:
    """A category that decides a number's range: 'north' rows have small sizes, 'south' rows large ones."""

    def load_data() -> tuple[pd.DataFrame, pd.Series]:
        rng = np.random.default_rng(5)
        region = rng.choice(["north", "south"], 600)
        size = np.where(region == "north", rng.normal(10, 1, 600), rng.normal(30, 1, 600)).round(3)
        weight = (size * 2 + rng.normal(0, 1, 600)).round(3)
        target = np.where(weight + rng.normal(0, 5, 600) > 40, "yes", "no")
        return pd.DataFrame({"region": region, "size": size, "weight": weight}), pd.Series(target)

    def build(seed: int) -> Pipeline:
        prep = ColumnTransformer(
            [("region", OneHotEncoder(handle_unknown="ignore"), ["region"])], remainder=StandardScaler()
        )
        return Pipeline([("prep", prep), ("model", LogisticRegression(random_state=seed))])

    return types.SimpleNamespace(
        __name__="mixed", SEED=1, TASK="classification", METRIC="roc_auc", load_data=load_data, build=build, **extra
    )


def test_a_category_with_numbers_of_the_other_category_is_flagged() -> None:
    bundle = train_bundle(_mixed_recipe())
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)

    (north_small, north_large) = predictor.score(
        predictor.encode([
            {"region": "north", "size": 10.2, "weight": 20.5},
            {"region": "north", "size": 30.1, "weight": 60.0},  # both numbers in range: of the south
        ])
    )  # fmt: skip

    assert north_small["outlier"]["flag"] is False
    assert north_large["out_of_range"] == [] and north_large["outlier"]["flag"] is True


def test_the_declared_share_sets_the_threshold() -> None:
    wide = train_bundle(_mixed_recipe(OUTLIER_SHARE=0.1)).manifest.outliers
    narrow = train_bundle(_mixed_recipe()).manifest.outliers

    assert wide is not None and narrow is not None
    assert wide.threshold < narrow.threshold
    assert wide.training_flagged == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("share", [0, 0.5, "1%", True, -0.1])
def test_an_unusable_outlier_share_stops_training_with_its_name(share: object) -> None:
    with pytest.raises(RecipeError, match=r"OUTLIER_SHARE must be a number between 0 and 0\.5"):
        train_bundle(_mixed_recipe(OUTLIER_SHARE=share))


def test_a_scatter_the_robust_fit_cannot_take_falls_back_to_shrinkage(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("singular covariance")

    monkeypatch.setattr(outliers.MinCovDet, "fit", fails)
    bundle = train_bundle(_mixed_recipe())
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)

    assert bundle.manifest.outliers is not None and bundle.manifest.outliers.method == "ledoit_wolf"
    assert _flags(predictor, [{"region": "north", "size": 30.1, "weight": 60.0}]) == [True]
