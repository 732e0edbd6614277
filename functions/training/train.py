"""Train the recipe in `model/` into a model bundle: fit, derive, export, check parity, measure features, stamp."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from types import ModuleType
from typing import Any

import numpy as np
import onnx
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from functions.core.errors import RecipeError
from functions.core.features import FeatureSpec, FeatureType, category_texts, encode_columns
from functions.core.manifest import DataLineage, Lineage, Manifest, SegmentSpec
from functions.training.calibration import fit_calibration
from functions.training.derive import derive_baseline, derive_fallback, derive_feature_spec
from functions.training.export import Holdout, check_exportable, check_parity, export_onnx, prepared_for_export
from functions.training.frame import as_table, model_frame
from functions.training.importance import feature_report, importance_rule
from functions.training.metrics import holdout_metrics
from functions.training.outliers import fit_detector, outlier_share
from functions.training.recipe_contract import check_recipe, declared

DEFAULT_RECIPE = "model.recipe"
HOLDOUT_SHARE = 0.2
_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow")


@dataclass(frozen=True)
class Bundle:
    """A trained model: its manifest (stamped with its version) and its ONNX graph."""

    manifest: Manifest
    onnx_bytes: bytes

    @property
    def version(self) -> str:
        return self.manifest.version


def load_recipe(name: str = DEFAULT_RECIPE) -> ModuleType:
    """Import a recipe module and check it against the recipe contract (`recipe_contract.CONTRACT`)."""
    try:
        recipe = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise RecipeError(
                f"no recipe module {name!r}: the `recipe` setting names a module by its import path, "
                "e.g. model.recipe or model.examples.penguins"
            ) from exc
        raise RecipeError(
            f"recipe {name} imports {exc.name}, which is not installed: add it to model/requirements.txt and run "
            "`make install`"
        ) from exc
    check_recipe(recipe, name)
    return recipe


def load_table(recipe: ModuleType) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The recipe's `load_data()` as named columns and a target array (it may return a DataFrame)."""
    loaded = recipe.load_data()
    if not (isinstance(loaded, tuple) and len(loaded) == 2):
        raise RecipeError(f"load_data() must return (features, target); got {type(loaded).__name__}")
    return as_table(*loaded)


def _fit(recipe: ModuleType, seed: int, x_train: Any, y_train: np.ndarray, *, copy: bool = False) -> Any:
    """The recipe's estimator, checked for export before fitting, fitted as exported (`prepared_for_export`).

    With `copy`, a clone of what build() returns is fitted: a build() may hand out the same step objects
    on every call, and fitting them again would change the model already fitted with them.
    """
    estimator = recipe.build(seed)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise RecipeError(
            f"build() must return an unfitted scikit-learn estimator (a Pipeline, say); got {type(estimator).__name__}"
        )
    if copy:
        estimator = clone(estimator)
    check_exportable(estimator)
    estimator = prepared_for_export(estimator)
    try:
        return estimator.fit(x_train, y_train)
    except Exception as exc:  # scikit-learn's own message, with what Slipway passed in
        raise RecipeError(
            f"fitting build()'s estimator failed: {type(exc).__name__}: {exc}. It receives a pandas DataFrame with "
            f"load_data()'s {x_train.shape[1]} columns by name: numbers as float64, categories as strings, booleans "
            "as bool, missing values already imputed; see model/recipe.py"
        ) from exc


def capture_exclusions(declared: object, spec: FeatureSpec) -> tuple[str, ...]:
    """The recipe's CAPTURE_EXCLUDE as feature names in the spec's order; a name the data lacks refuses training."""
    if declared is None:
        return ()
    if isinstance(declared, str) or not isinstance(declared, Iterable):
        raise ValueError(f'recipe CAPTURE_EXCLUDE must be a list of feature names, e.g. ["postcode"]; got {declared!r}')
    names = list(declared)
    not_names = [name for name in names if not isinstance(name, str)]
    if not_names:
        raise ValueError(f"recipe CAPTURE_EXCLUDE must hold feature names (strings); got {not_names!r}")
    unknown = sorted(set(names) - set(spec.names))
    if unknown:
        known = ", ".join(spec.names[:20]) + (", ..." if len(spec.names) > 20 else "")
        raise ValueError(
            f"recipe CAPTURE_EXCLUDE names features the data does not have: {unknown}; "
            f"the features are the columns of load_data(): {known}"
        )
    excluded = set(names)
    return tuple(name for name in spec.names if name in excluded)


_SEGMENTS_EXAMPLE = '["sex", ("age", [30, 50])]'


def segment_specs(
    declared: object, spec: FeatureSpec, columns: Mapping[str, np.ndarray], capture_exclude: Iterable[str] = ()
) -> tuple[SegmentSpec, ...]:
    """The recipe's SEGMENTS as segment specs: a category or boolean feature by its training values, a
    numeric one by explicit edges or, by default, at its training quartiles. A bad entry refuses training."""
    if declared is None:
        return ()
    if isinstance(declared, str) or not isinstance(declared, Iterable):
        raise ValueError(f"recipe SEGMENTS must be a list of feature names or (name, [edges]) pairs, e.g. "
                         f"{_SEGMENTS_EXAMPLE}; got {declared!r}")  # fmt: skip
    features = {feature.name: feature for feature in spec.features}
    excluded = set(capture_exclude)
    out: list[SegmentSpec] = []
    for entry in declared:
        name, edges = (entry, None) if isinstance(entry, str) else _pair(entry)
        if name not in features:
            known = ", ".join(spec.names[:20]) + (", ..." if len(spec.names) > 20 else "")
            raise ValueError(f"recipe SEGMENTS names {name!r}, which is not a feature; the features are the "
                             f"columns of load_data(): {known}")  # fmt: skip
        if name in excluded:
            raise ValueError(f"recipe SEGMENTS names {name!r}, which CAPTURE_EXCLUDE keeps out of capture: the "
                             "monitor splits served rows by their captured values, so a segment feature must be "
                             "captured; remove it from one of the two lists")  # fmt: skip
        if any(segment.feature == name for segment in out):
            raise ValueError(f"recipe SEGMENTS names {name!r} twice")
        feature = features[name]
        numeric = feature.type in (FeatureType.NUMBER, FeatureType.INTEGER)
        if edges is not None and not numeric:
            raise ValueError(f"recipe SEGMENTS gives edges for {name!r}, a {feature.type.value} feature: edges are "
                             "for numeric features; name a category or boolean feature alone")  # fmt: skip
        if feature.type is FeatureType.CATEGORY:
            out.append(SegmentSpec(feature=name, kind="category", values=tuple(feature.categories or ())))
        elif feature.type is FeatureType.BOOLEAN:
            out.append(SegmentSpec(feature=name, kind="boolean", values=("false", "true")))
        else:
            found = _edges(name, edges) if edges is not None else _quartiles(name, columns[name])
            out.append(SegmentSpec(feature=name, kind="numeric", edges=found))
    return tuple(out)


def _pair(entry: object) -> tuple[str, object]:
    if isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str):
        return entry[0], entry[1]
    raise ValueError(f"recipe SEGMENTS entries are feature names or (name, [edges]) pairs, e.g. "
                     f"{_SEGMENTS_EXAMPLE}; got {entry!r}")  # fmt: skip


def _edges(name: str, edges: object) -> tuple[float, ...]:
    given = list(edges) if isinstance(edges, Iterable) and not isinstance(edges, str) else None
    if (
        not given
        or any(isinstance(e, bool) or not isinstance(e, numbers.Real) or not math.isfinite(e) for e in given)
        or any(b <= a for a, b in pairwise(given))
    ):
        raise ValueError(f"recipe SEGMENTS edges of {name!r} must be finite numbers in increasing order, at least "
                         f"one, e.g. ({name!r}, [30, 50]); got {edges!r}")  # fmt: skip
    return tuple(float(e) for e in given)


def _quartiles(name: str, column: np.ndarray) -> tuple[float, ...]:
    values = np.asarray(column, dtype=np.float64)
    values = values[np.isfinite(values)]
    edges = np.unique(np.quantile(values, [0.25, 0.5, 0.75], method="nearest")) if values.size else np.array([])
    edges = edges[edges > values.min()] if values.size else edges  # an edge at the minimum leaves an empty bin
    if not edges.size:
        raise ValueError(f"recipe SEGMENTS names {name!r}, whose training values are all the same: it has no "
                         f"quartiles to split at; give edges, e.g. ({name!r}, [30, 50]), or drop it")  # fmt: skip
    return tuple(edges.tolist())


def data_declarations(
    recipe: object, columns: Mapping[str, np.ndarray]
) -> tuple[FeatureSpec, tuple[str, ...], tuple[SegmentSpec, ...]]:
    """The recipe's names that depend on its data (FEATURES, CAPTURE_EXCLUDE, SEGMENTS) applied to `columns`:
    the feature spec, the excluded features and the segments; a name the data refutes refuses training."""
    spec = derive_feature_spec(columns, declared(recipe, "FEATURES"))
    capture_exclude = capture_exclusions(declared(recipe, "CAPTURE_EXCLUDE"), spec)
    return spec, capture_exclude, segment_specs(declared(recipe, "SEGMENTS"), spec, columns, capture_exclude)


def data_hash(columns: dict[str, np.ndarray], target: np.ndarray) -> str:
    """A hash of the training table (names, values and target), for lineage."""
    digest = hashlib.sha256()
    for name, values in columns.items():
        digest.update(name.encode())
        digest.update(np.asarray(values).astype(str).tobytes())
    digest.update(np.asarray(target).astype(str).tobytes())
    return digest.hexdigest()


def train_bundle(
    recipe: ModuleType,
    columns: dict[str, np.ndarray] | None = None,
    target: np.ndarray | None = None,
    *,
    code_revision: str | None = None,
    data: DataLineage | None = None,
) -> Bundle:
    """Fit the recipe on its data (or on `columns`/`target` when given) into a bundle."""
    columns, target = load_table(recipe) if columns is None or target is None else as_table(columns, target)
    task, seed = recipe.TASK, int(recipe.SEED)
    if task == "classification":
        target = target.astype(str)

    spec, capture_exclude, segments = data_declarations(recipe, columns)
    share = outlier_share(declared(recipe, "OUTLIER_SHARE"))
    rule = importance_rule(
        threshold=declared(recipe, "IMPORTANCE_THRESHOLD"), share=declared(recipe, "IMPORTANCE_SHARE")
    )
    encoded = encode_columns(spec, columns)
    texts = category_texts(spec, columns)
    frame = model_frame(spec, encoded, texts)
    stratify = target if task == "classification" else None
    train_rows, holdout_rows = train_test_split(
        np.arange(len(target)), test_size=HOLDOUT_SHARE, random_state=seed, stratify=stratify
    )
    x_train, x_holdout = frame.iloc[train_rows], frame.iloc[holdout_rows]
    y_train, y_holdout = target[train_rows], target[holdout_rows]
    if task == "classification" and len(np.unique(y_train)) < 2:
        raise RecipeError(
            f"the target has one class ({str(target[0])!r}) in the training rows: a classifier needs at least two; "
            "check load_data()'s target, or set TASK = 'regression' for a numeric target"
        )
    pipeline = _fit(recipe, seed, x_train, y_train)

    classes = [str(c) for c in pipeline.classes_] if task == "classification" else []
    probabilities = pipeline.predict_proba(x_holdout) if task == "classification" else None
    metrics = holdout_metrics(task, y_holdout, pipeline.predict(x_holdout), probabilities, classes)

    onnx_bytes, detector = fit_detector(
        onnx.load_from_string(export_onnx(pipeline, spec, task)),
        spec,
        encoded[train_rows],
        encoded[holdout_rows],
        seed=seed,
        share=share,
    )
    tolerance = float(declared(recipe, "PARITY_TOLERANCE"))
    holdout = Holdout(x_holdout, encoded[holdout_rows], {i: [t[r] for r in holdout_rows] for i, t in texts.items()})
    parity = check_parity(pipeline, onnx_bytes, holdout, task, tolerance)
    importance = feature_report(
        pipeline, lambda x: _fit(recipe, seed, x, y_train, copy=True), spec=spec, metric=recipe.METRIC, seed=seed,
        rule=rule, x_train=x_train, x_holdout=x_holdout, y_holdout=y_holdout,
    )  # fmt: skip

    manifest = Manifest(
        task=task,
        classes=tuple(classes) or None,
        feature_spec=spec,
        metric=recipe.METRIC,
        metrics=metrics,
        fallback=derive_fallback(task, y_train, tuple(classes) or None),
        baseline=derive_baseline(spec, columns, encoded, pipeline.predict(frame), task),
        parity=parity,
        lineage=Lineage(
            data_hash=data_hash(columns, target),
            rows=int(encoded.shape[0]),
            seed=seed,
            recipe=recipe.__name__,
            code_revision=code_revision,
            libraries={name: importlib.metadata.version(name) for name in _LIBRARIES},
            data=data,
        ),
        capture_exclude=capture_exclude,
        outliers=detector,
        feature_report=importance,
        segments=segments,
        calibration=fit_calibration(probabilities, y_holdout, classes, seed=seed)
        if probabilities is not None
        else None,
    )
    return Bundle(manifest.with_version(onnx_bytes), onnx_bytes)
