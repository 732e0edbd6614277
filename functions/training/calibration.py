"""Calibrate a classifier's probabilities on the holdout, for estimated quality without labels.

The map stored in the manifest is an isotonic regression of each class's outcome
(one vs rest; the positive class alone for a binary model) on the model's
probability, fitted on every holdout row. Its error is measured honestly by
cross-fitting: the holdout is split in `FOLDS` stratified folds, each fold is
calibrated by maps fitted on the others, and the expected calibration error is
taken over those out-of-fold probabilities (and, for comparison, over the model's
own probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from functions.core.estimated_quality import calibrated
from functions.core.manifest import Calibration, ClassCalibration

FOLDS = 5
BINS = 10
MIN_ROWS = 20  # fewer holdout rows cannot be cross-fitted into folds of a few rows each


def _maps(raw: np.ndarray, truth: np.ndarray, classes: Sequence[str]) -> tuple[ClassCalibration, ...]:
    mapped = [1] if len(classes) == 2 else range(len(classes))
    out = []
    for k in mapped:
        score = raw[:, k]
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit_transform(score, truth == k)
        # One knot per step of the fit, at the mean score of its rows: a line through the steps' centres
        # rather than the steps themselves, so that rows inside a wide step are not all given its average.
        levels, step = np.unique(fitted, return_inverse=True)
        centres = np.bincount(step, weights=score) / np.bincount(step)
        out.append(
            ClassCalibration(name=classes[k], x=tuple(centres.tolist()), y=tuple(np.clip(levels, 0, 1).tolist()))
        )
    return tuple(out)


def calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error of the top class: Σ over equal-width confidence bins of the bin's share of rows
    times |accuracy - mean confidence| in it."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in np.unique(which):
        in_bin = which == b
        error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(min(error, 1.0))


def fit_calibration(
    probabilities: np.ndarray, y_true: np.ndarray, classes: Sequence[str], *, seed: int
) -> Calibration | None:
    """The calibration of a classifier whose holdout probabilities (rows x classes) and labels are given;
    None when the holdout is too small to cross-fit, or a class has fewer rows than folds."""
    raw = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index.get(str(y), -1) for y in y_true])
    if len(truth) < MIN_ROWS or (truth < 0).any() or np.bincount(truth, minlength=len(classes)).min() < FOLDS:
        return None
    out_of_fold = np.empty_like(raw)
    for fit_rows, held in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(raw, truth):
        fold_map = Calibration(classes=_maps(raw[fit_rows], truth[fit_rows], classes), rows=1, folds=FOLDS,
                               bins=BINS, calibration_error=0, raw_calibration_error=0)  # fmt: skip
        out_of_fold[held] = calibrated(fold_map, classes, raw[held])
    return Calibration(
        classes=_maps(raw, truth, classes),
        rows=len(truth),
        folds=FOLDS,
        bins=BINS,
        calibration_error=calibration_error(out_of_fold, truth),
        raw_calibration_error=calibration_error(raw, truth),
    )
