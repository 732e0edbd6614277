"""The /predict use case: validate and score rows, or answer with plan B; with a rollout, the candidate's part.

The live model's feature spec is the API: rows it refuses are a 4xx whatever the rollout.
In a canary, the candidate answers its share of requests; in a shadow, it scores its share
after the live answer is made, and its predictions go to the capture record only. Either
way a candidate that refuses the rows, fails or raises never changes an answer: the live
model gives it, and the outcome says what went wrong with the candidate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from functions.core.errors import FieldError, InvalidRequest, ModelUnavailable
from functions.core.features import EncodedBatch
from functions.core.predictor import REASON_MODEL_UNAVAILABLE, Prediction, Predictor, fallback_predictions
from functions.core.rollout import CANDIDATE, LIVE, candidate_takes
from functions.inference.live_model import Serving


@dataclass(frozen=True)
class Shadow:
    """What the candidate said about the rows the live model answered (or why it said nothing)."""

    version: str
    predictions: list[Prediction] | None
    latency_ms: float
    error: str | None = None


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
    role: str = LIVE  # which of the container's versions answered: live or candidate (canary)
    predictor: Predictor | None = None  # the model that answered (its manifest describes the rows)
    shadow: Shadow | None = None
    candidate_error: str | None = None  # the canary's candidate should have answered and could not

    @property
    def outliers(self) -> int:
        """Rows the answering model's outlier detector flagged."""
        return sum(1 for p in self.predictions if (p.get("outlier") or {}).get("flag"))


def predict(
    serving: Serving,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str | None = None,
    draw: Callable[[], float] = random.random,
) -> Outcome:
    """Score `rows` with the live model (or the canary's candidate); plan B when none can. Raises InvalidRequest."""
    predictor = serving.predictor
    if predictor is None:
        # Without a loaded spec the rows cannot be checked feature by feature; plan B answers them all.
        why = serving.reason or REASON_MODEL_UNAVAILABLE
        return Outcome(serving.version, fallback_predictions(serving.fallback, why, len(rows)), why, 0, 0)
    batch = predictor.encode(rows)
    candidate = serving.candidate
    takes = candidate is not None and candidate_takes(candidate.rollout, key=key, draw=draw())
    candidate_error = None
    if candidate is not None and takes and candidate.rollout.mode == "canary":
        try:
            answered = _answer(candidate.predictor, rows, serving)
        except Exception as exc:  # refused rows, a failing graph: the live model answers instead
            candidate_error = _why(exc)
        else:
            return answered
    outcome = _answer(predictor, rows, serving, batch=batch)
    if candidate is not None and takes and candidate.rollout.mode == "shadow":
        return _with_shadow(outcome, candidate.predictor, rows)
    if candidate_error is not None:
        return replace(outcome, candidate_error=candidate_error)
    return outcome


def served_versions(serving: Serving) -> dict[str, Predictor]:
    """The versions a request may name (the protocol's /versions/{version}): the live one, and a canary's
    candidate, which answers a share of the requests (a shadow's answers none)."""
    versions = {serving.predictor.version: serving.predictor} if serving.predictor is not None else {}
    candidate = serving.candidate
    if candidate is not None and candidate.rollout.mode == "canary":
        versions[candidate.predictor.version] = candidate.predictor
    return versions


def predict_version(serving: Serving, rows: Sequence[Mapping[str, Any]], version: str) -> Outcome:
    """Score `rows` with `version` alone, whatever the rollout's split: the live model (plan B if its graph
    fails) or a canary's candidate. Raises InvalidRequest (404) when `version` is not served."""
    predictor = served_versions(serving).get(version)
    if predictor is None:
        raise version_not_served(version, served_versions(serving))
    return _answer(predictor, rows, serving)


def version_not_served(version: str, served: Mapping[str, Predictor]) -> InvalidRequest:
    """The 404 of a request naming a version this container does not serve."""
    message = f"version {version[:100]!r} is not served: this server serves {', '.join(served) or 'none'}"
    return InvalidRequest(message, [FieldError(("path", "version"), "not_found", message)], status=404)


def _answer(
    predictor: Predictor, rows: Sequence[Mapping[str, Any]], serving: Serving, *, batch: EncodedBatch | None = None
) -> Outcome:
    """`predictor`'s answer to the rows; plan B (the live fallback) if the live graph fails."""
    is_live = predictor is serving.predictor
    batch = batch if batch is not None else predictor.encode(rows)
    reason: str | None = None
    try:
        predictions = predictor.score(batch)
    except ModelUnavailable as exc:
        if not is_live:
            raise
        reason = str(exc)
        predictions = fallback_predictions(serving.fallback, reason, len(rows), batch)
    return Outcome(
        predictor.version,
        predictions,
        reason,
        batch.imputation_count,
        batch.out_of_range_count,
        batch,
        stale=is_live and serving.stale is not None,
        role=LIVE if is_live else CANDIDATE,
        predictor=predictor,
    )


def _with_shadow(outcome: Outcome, candidate: Predictor, rows: Sequence[Mapping[str, Any]]) -> Outcome:
    started = time.perf_counter()
    try:
        predictions, error = candidate.score(candidate.encode(rows)), None
    except Exception as exc:  # never the answer's problem: recorded beside it
        predictions, error = None, _why(exc)
    latency_ms = (time.perf_counter() - started) * 1000
    return replace(outcome, shadow=Shadow(candidate.version, predictions, latency_ms, error))


def _why(exc: Exception) -> str:
    """Why the candidate did not answer, for the log and the capture record: places and rules, never a value
    (a refusal's message quotes the rows, and a feature excluded from capture must not leak through it)."""
    if isinstance(exc, InvalidRequest):
        places = ", ".join(f"{'.'.join(str(part) for part in error.loc)} ({error.type})" for error in exc.errors[:5])
        more = f" and {len(exc.errors) - 5} more" if len(exc.errors) > 5 else ""
        return f"refused the rows at {places or 'the body'}{more}"
    return f"{type(exc).__name__}: {exc}"
