"""Names of the metrics the functions publish (EMF) and the alarms and dashboard read.

Every metric is published in the stage's namespace with the single dimension
`service`; the model version travels as EMF metadata so that alarms keep one
stable dimension set across promotions.
"""

from __future__ import annotations

SERVICE_DIMENSION = "service"

PREDICT_REQUESTS = "PredictRequests"  # every /predict call that reached the handler, valid or not
PREDICTIONS = "Predictions"  # rows answered (model or fallback)
INVALID_REQUESTS = "InvalidRequests"  # 4xx answers to bad input
FALLBACKS = "Fallbacks"  # rows answered by plan B
FALLBACKS_BY_REASON = "FallbacksByReason"  # same, with a `reason` dimension
IMPUTATIONS = "Imputations"  # feature values filled in
OUT_OF_RANGE = "OutOfRange"  # feature values outside the training range
SCORING_LATENCY = "ScoringLatency"  # milliseconds inside the handler for one /predict
REASON_DIMENSION = "reason"
