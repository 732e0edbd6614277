"""NAIVE BASELINE — not Slipway. The handler a data scientist would write first.

It exists only to be measured against: a joblib pickle of the fitted
scikit-learn pipeline, loaded at import from local disk (`NAIVE_MODEL_PATH`),
the event body parsed with `json`, the rows put into a numpy matrix in
feature order, `predict_proba` and `predict`, and `json.dumps` back. No
validation, no canonicalisation, no imputation, no metrics, no fallback.
Never deploy it: loading a pickle runs arbitrary code.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np

PIPELINE, FEATURES = joblib.load(os.environ["NAIVE_MODEL_PATH"])
CLASSES = [str(c) for c in PIPELINE.classes_]


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instances = json.loads(event["body"])["instances"]
    matrix = np.array([[row[name] for name in FEATURES] for row in instances], dtype=np.float64)
    probabilities = PIPELINE.predict_proba(matrix)
    labels = PIPELINE.predict(matrix)
    predictions = [
        {"label": str(label), "probabilities": dict(zip(CLASSES, map(float, row), strict=True))}
        for label, row in zip(labels, probabilities, strict=True)
    ]
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"predictions": predictions}),
        "isBase64Encoded": False,
    }
