"""Which features earn their place: permutation importance on the holdout, and the metric without the weak ones.

AWS-free. For every feature, the fitted pipeline scores the holdout rows with
that feature's values shuffled, `REPEATS` times; the importance is the mean
loss of the recipe's metric, signed so that a positive value always means the
feature helps (a drop of accuracy, roc_auc, f1_macro or r2; a rise of rmse,
mae or log_loss). The metric is computed by functions.training.metrics, so the
figure with every feature is the manifest's holdout figure.

The threshold of importance is relative to the metric's scale (`ImportanceRule`): a share
(the recipe's IMPORTANCE_SHARE, by default `DEFAULT_SHARES`) of the full range 1 for a score
bounded by 1 (accuracy, roc_auc, f1_macro, r2), and of the model's own holdout error for rmse,
mae and log_loss, whose units are the target's (dollars, say) or nats. A recipe may instead
set IMPORTANCE_THRESHOLD, in the metric's units. The report states the threshold and its basis.

Features whose importance is below the threshold are then held at their imputation
value in the training and holdout rows, the recipe's estimator is refitted, and its
holdout metric says what the model would score without them. Holding a column constant
rather than dropping it keeps pipelines that select columns by name working, while the
column carries no information.

Everything is seeded with the recipe's SEED, so the report is the same for the
same data; it costs about (features x REPEATS + 1) holdout predictions and one
more fit, and a holdout larger than MAX_ROWS is sampled down to MAX_ROWS rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from functions.core.features import FeatureSpec, FeatureType
from functions.core.manifest import FeatureImportance, FeatureReport, WithoutUnimportant
from functions.training.metrics import higher_is_better, metric_value

REPEATS = 5
# At most this many holdout rows are shuffled: enough to tell an informative feature from noise, while
# a large table's report stays a few seconds (the cost grows with rows x features x REPEATS).
MAX_ROWS = 10_000
# The default share of the metric's scale below which a feature is unimportant. A score bounded by 1:
# a tenth of a percentage point, indistinguishable from the noise of a few thousand holdout rows. An
# error: 1 % of the model's own error (for a mean absolute error of $5,000, $50).
DEFAULT_SHARES = {"bounded": 0.001, "error": 0.01}
_ERROR_LENGTH = 500

Refit = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class ImportanceRule:
    """How the threshold is set: a share of the metric's scale, or an absolute value in the metric's units."""

    share: float | None = None  # None: DEFAULT_SHARES for the metric
    absolute: float | None = None

    def threshold(self, metric: str, holdout_metric: float) -> tuple[float, float | None, float | None]:
        """The threshold for a model whose holdout `metric` is `holdout_metric`, with its share and scale."""
        if self.absolute is not None:
            return self.absolute, None, None
        bounded = higher_is_better(metric)  # accuracy, roc_auc, f1_macro, r2: at most 1
        share = self.share if self.share is not None else DEFAULT_SHARES["bounded" if bounded else "error"]
        scale = 1.0 if bounded else abs(holdout_metric)
        return share * scale, share, scale


def importance_rule(*, threshold: object = None, share: object = None) -> ImportanceRule:
    """The recipe's IMPORTANCE_THRESHOLD (metric units) or IMPORTANCE_SHARE (of the metric's scale), checked."""
    if threshold is not None and share is not None:
        raise ValueError(
            "recipe sets both IMPORTANCE_THRESHOLD and IMPORTANCE_SHARE: set one, the share of the metric's scale "
            "(e.g. IMPORTANCE_SHARE = 0.01, 1 % of the model's error) or the threshold in the metric's units"
        )
    if share is not None:
        return ImportanceRule(share=_checked("IMPORTANCE_SHARE", share, "a share of the metric's scale, e.g. 0.01"))
    if threshold is not None:
        return ImportanceRule(absolute=_checked("IMPORTANCE_THRESHOLD", threshold, "in the metric's units, e.g. 0.001"))
    return ImportanceRule()


def _checked(name: str, declared: object, example: str) -> float:
    if isinstance(declared, bool) or not isinstance(declared, int | float) or not math.isfinite(declared):
        raise ValueError(f"recipe {name} must be a finite number {example}; got {declared!r}")
    if declared < 0:
        raise ValueError(f"recipe {name} must be 0 or more; got {declared!r}")
    return float(declared)


def feature_report(
    pipeline: Any,
    refit: Refit,
    *,
    spec: FeatureSpec,
    metric: str,
    seed: int,
    rule: ImportanceRule,
    x_train: pd.DataFrame,
    x_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
) -> FeatureReport:
    """Permutation importance of every feature on the holdout, and the metric without the unimportant ones.

    `refit(x)` returns the recipe's estimator freshly fitted on the training rows `x`.
    """
    rows = _sampled_rows(len(x_holdout), seed)
    x_rows, y_rows = x_holdout.iloc[rows], y_holdout[rows]
    scorer = _signed_scorer(metric)
    measured = permutation_importance(
        pipeline, x_rows, y_rows, scoring=scorer, n_repeats=REPEATS, random_state=seed, n_jobs=None
    )
    means, stds = measured.importances_mean, measured.importances_std
    holdout_metric = _metric(pipeline, metric, x_rows, y_rows)
    threshold, share, scale = rule.threshold(metric, holdout_metric)
    order = np.argsort(-means, kind="stable")  # ties keep spec order
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    features = tuple(
        FeatureImportance(
            name=name, importance=float(means[i]), std=float(stds[i]), rank=int(ranks[i]),
            important=bool(means[i] >= threshold),
        )
        for i, name in enumerate(spec.names)
    )  # fmt: skip
    unimportant = [f.name for f in features if not f.important]
    return FeatureReport(
        metric=metric,
        threshold=threshold,
        threshold_share=share,
        threshold_scale=scale,
        repeats=REPEATS,
        rows=len(rows),
        holdout_metric=holdout_metric,
        features=features,
        without_unimportant=(
            _without(unimportant, refit, spec, metric, x_train, x_rows, y_rows) if unimportant else None
        ),
    )


def _sampled_rows(count: int, seed: int) -> np.ndarray:
    """Every holdout row, or MAX_ROWS of them drawn with the seed (in their holdout order)."""
    if count <= MAX_ROWS:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=MAX_ROWS, replace=False))


def _metric(estimator: Any, metric: str, x: pd.DataFrame, y: np.ndarray) -> float:
    """The recipe's metric of `estimator` on rows `x`, as the manifest's holdout metrics compute it."""
    if metric in ("roc_auc", "log_loss"):
        classes = [str(c) for c in estimator.classes_]
        return metric_value(metric, y, None, estimator.predict_proba(x), classes)
    return metric_value(metric, y, estimator.predict(x), None, [])


def _signed_scorer(metric: str) -> Callable[[Any, pd.DataFrame, np.ndarray], float]:
    """A scorer where larger is better, so a loss when shuffling is a positive importance."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    return lambda estimator, x, y: sign * _metric(estimator, metric, x, y)


def _without(
    unimportant: list[str],
    refit: Refit,
    spec: FeatureSpec,
    metric: str,
    x_train: pd.DataFrame,
    x_rows: pd.DataFrame,
    y_rows: np.ndarray,
) -> WithoutUnimportant:
    """The recipe refitted and scored with `unimportant` held at their imputation value; a failure is recorded."""
    try:
        refitted = refit(held_constant(x_train, spec, unimportant))
        value = _metric(refitted, metric, held_constant(x_rows, spec, unimportant), y_rows)
    except Exception as exc:  # a report about the model never stops its training
        reason = f"{type(exc).__name__}: {exc}"
        return WithoutUnimportant(features=tuple(unimportant), error=reason[:_ERROR_LENGTH])
    return WithoutUnimportant(features=tuple(unimportant), metric=value)


def held_constant(frame: pd.DataFrame, spec: FeatureSpec, names: Sequence[str]) -> pd.DataFrame:
    """`frame` with the columns `names` set to their imputation value, in the type the pipeline reads."""
    features = {feature.name: feature for feature in spec.features}
    held = frame.copy()
    for name in names:
        value = _model_value(features[name].type, features[name].impute)
        held[name] = pd.Series(value, index=held.index, dtype=frame[name].dtype)  # the dtype model_frame gave it
    return held


def _model_value(kind: FeatureType, impute: float | str | bool) -> float | str | bool:
    """An imputation value as functions.training.frame.model_frame hands it to the pipeline."""
    if kind is FeatureType.CATEGORY:
        return str(impute)
    if kind is FeatureType.BOOLEAN:
        return bool(impute)
    return float(np.float32(impute))
