"""Names of the metrics the functions publish (EMF) and the alarms and dashboard read.

Every metric is published in the stage's namespace with the single dimension
`service`; the model version travels as EMF metadata so that alarms keep one
stable dimension set across promotions.
"""

from __future__ import annotations

import logging
import os

SERVICE_DIMENSION = "service"

PREDICT_REQUESTS = "PredictRequests"  # every /predict call that reached the handler, valid or not
PREDICTIONS = "Predictions"  # rows answered (model or fallback)
INVALID_REQUESTS = "InvalidRequests"  # 4xx answers to bad input
FALLBACKS = "Fallbacks"  # rows answered by plan B
FALLBACKS_BY_REASON = "FallbacksByReason"  # same, with a `reason` dimension
LAST_GOOD_ANSWERS = "LastGoodAnswers"  # rows answered by the last good version: the live one cannot be loaded
IMPUTATIONS = "Imputations"  # feature values filled in
OUT_OF_RANGE = "OutOfRange"  # feature values outside the training range
OUTLIERS = "Outliers"  # rows the model's outlier detector flagged (unlike the training rows as a whole)
SCORING_LATENCY = "ScoringLatency"  # milliseconds inside the handler for one /predict
ASYNC_POISON_MESSAGES = "AsyncPoisonMessages"  # dead letters that name no job: logged whole, then deleted
REASON_DIMENSION = "reason"
# During a rollout, Predictions, Fallbacks and ScoringLatency again by `model_role` (live or
# candidate: two values, so a new version never adds a metric stream), and the candidate's own.
MODEL_ROLE_DIMENSION = "model_role"
CANDIDATE_ERRORS = "CandidateErrors"  # canary requests the candidate could not answer (live did)
SHADOW_LATENCY = "ShadowLatency"  # milliseconds the candidate took to score a shadowed request
SHADOW_ERRORS = "ShadowErrors"  # shadowed requests the candidate could not score

# The drift monitor (one EMF document per cycle, one per feature with the `feature` dimension,
# and one per model version with the `model_version` dimension for the live quality).
MONITOR_SERVICE_SUFFIX = "-monitor"
FEATURE_DIMENSION = "feature"
MODEL_VERSION_DIMENSION = "model_version"
MONITORED_ROWS = "MonitoredRows"  # captured rows in the window served by the live model
DRIFT_SHARE = "DriftShare"  # share of features that drifted
DRIFT_DETECTED = "DriftDetected"  # 1 when the window's verdict is drift, else 0
DRIFT_INSUFFICIENT_DATA = "DriftInsufficientData"  # 1 when the window had too few rows for a verdict
PREDICTION_PSI = "PredictionPSI"
FEATURE_DRIFTED = "FeatureDrifted"  # per feature: 1 or 0
FEATURE_PSI = "FeaturePSI"
FEATURE_JS = "FeatureJS"
FEATURE_KS = "FeatureKS"
FEATURE_LINF = "FeatureLinf"
FEATURE_MISSING_RATE = "FeatureMissingRate"
FEATURE_OUT_OF_RANGE = "FeatureOutOfRange"
OUTLIER_SHARE = "OutlierShare"  # share of the window's scored rows the outlier detector flagged
MODEL_QUALITY = "ModelQuality"  # the recipe's metric on labelled live rows
LABELLED_ROWS = "LabelledRows"
# The live model's quality estimated from calibrated probabilities, without labels: the gate metric alone
# (dimension service, for the alarm), and every estimated metric (dimensions service, metric).
ESTIMATED_QUALITY = "EstimatedQuality"
METRIC_DIMENSION = "metric"

# Bias across segments (functions.core.segments): one document per segment with the two segment
# dimensions, one per segment feature with the first, and the widest gap with `service` alone.
SEGMENT_FEATURE_DIMENSION = "SegmentFeature"
SEGMENT_DIMENSION = "Segment"
SEGMENT_ROWS = "SegmentRows"  # per segment: rows the model answered in the window
SEGMENT_POSITIVE_RATE = "SegmentPositiveRate"  # per segment, binary: share predicted as the positive class
SEGMENT_MEAN_PREDICTION = "SegmentMeanPrediction"  # per segment, regression
SEGMENT_TRUE_POSITIVE_RATE = "SegmentTruePositiveRate"  # per segment, binary, from labelled rows
SEGMENT_FALSE_POSITIVE_RATE = "SegmentFalsePositiveRate"
SEGMENT_MAE = "SegmentMAE"  # per segment, regression, from labelled rows
DEMOGRAPHIC_PARITY_GAP = "DemographicParityGap"  # per segment feature: max - min positive rate
TRUE_POSITIVE_RATE_GAP = "TruePositiveRateGap"  # equal-opportunity difference
FALSE_POSITIVE_RATE_GAP = "FalsePositiveRateGap"
MEAN_PREDICTION_GAP = "MeanPredictionGap"  # regression
MAE_GAP = "MAEGap"  # regression
SEGMENT_GAP = "SegmentGap"  # the widest gap over every segment feature, in gap_alarm's units: the alarm's metric


def service_logger(module: str) -> logging.Logger:
    """`module`'s logger under its function's Powertools logger, looked up when called.

    Powertools' `Logger(child=True)` names a child after the service when its module is first
    imported; a module imported before its function's environment is set (by a test, or by a
    second function of the local stack) would log under another service, never reaching the
    function's log. Looked up per call, the name is always the function's: `<service>.<module>`.
    """
    return logging.getLogger(f"{os.environ.get('POWERTOOLS_SERVICE_NAME', 'service_undefined')}.{module}")
