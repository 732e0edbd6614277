"""Where things live in the artifacts bucket: the one definition of the key layout."""

from __future__ import annotations

MODELS_PREFIX = "models/"
CAPTURE_PREFIX = "capture/"
REPORTS_PREFIX = "reports/"
FEEDBACK_PREFIX = "feedback/"
DATA_PREFIX = "data/"

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


def model_key(version: str) -> str:
    """Key of a version's ONNX graph."""
    return f"{MODELS_PREFIX}{version}/{MODEL_FILE}"


def manifest_key(version: str) -> str:
    """Key of a version's manifest."""
    return f"{MODELS_PREFIX}{version}/{MANIFEST_FILE}"
