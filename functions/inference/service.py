"""The /predict use case: validate and score rows, or answer with plan B."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.core.errors import ModelUnavailable
from functions.core.features import EncodedBatch
from functions.core.predictor import REASON_MODEL_UNAVAILABLE, Prediction, fallback_predictions
from functions.inference.live_model import Serving


@dataclass(frozen=True)
class Outcome:
    """The answer to one /predict request, with what the metrics count."""

    version: str | None
    predictions: list[Prediction]
    fallback_reason: str | None
    imputations: int
    out_of_range: int
    batch: EncodedBatch | None = None  # the encoded rows (None when no model could read them)
    stale: bool = False  # answered by the last good version: the registry's live one cannot be loaded


def predict(serving: Serving, rows: Sequence[Mapping[str, Any]]) -> Outcome:
    """Score `rows` with the live model; plan B when it cannot answer. Raises InvalidRequest."""
    predictor = serving.predictor
    if predictor is None:
        # Without a loaded spec the rows cannot be checked feature by feature; plan B answers them all.
        why = serving.reason or REASON_MODEL_UNAVAILABLE
        return Outcome(serving.version, fallback_predictions(serving.fallback, why, len(rows)), why, 0, 0)
    batch = predictor.encode(rows)
    reason: str | None = None
    try:
        predictions = predictor.score(batch)
    except ModelUnavailable as exc:
        reason = str(exc)
        predictions = fallback_predictions(serving.fallback, reason, len(rows), batch)
    return Outcome(
        predictor.version,
        predictions,
        reason,
        batch.imputation_count,
        batch.out_of_range_count,
        batch,
        stale=serving.stale is not None,
    )
