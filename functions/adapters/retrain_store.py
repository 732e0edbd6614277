"""The retrain pipeline's objects in S3: base data, run tables, candidate bundles, gate decisions, trigger marker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code, get_bytes, get_tagged
from functions.core import layout
from functions.core.errors import ChangedMeanwhile
from functions.core.gate import GateDecision
from functions.core.labelled import LabelledRowSource
from functions.core.manifest import Manifest


class S3RetrainStore:
    """Reads and writes the retrain pipeline's objects in the artifacts bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> bytes:
        """An object's bytes; KeyError when it does not exist."""
        return get_bytes(self._s3, self.bucket, key)

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """An object's bytes and ETag; KeyError when it does not exist."""
        return get_tagged(self._s3, self.bucket, key)

    def put_unless_changed(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> None:
        """Write `key` only if it is still the version of `etag` (absent, for None): S3's conditional write."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise ChangedMeanwhile(key) from exc
            raise

    def put_candidate(self, manifest: Manifest, onnx_bytes: bytes) -> None:
        prefix = layout.candidate_prefix(manifest.version)
        self.put(prefix + layout.MODEL_FILE, onnx_bytes)
        self.put(prefix + layout.MANIFEST_FILE, manifest.to_json(), "application/json")

    def get_candidate(self, version: str) -> tuple[Manifest, bytes]:
        prefix = layout.candidate_prefix(version)
        manifest = Manifest.model_validate_json(self.get(prefix + layout.MANIFEST_FILE))
        return manifest, self.get(prefix + layout.MODEL_FILE)

    def put_decision(self, decision: GateDecision) -> str:
        key = layout.gate_decision_key(decision.decided_at.strftime("%Y%m%dT%H%M%S%fZ"), decision.run_id)
        self.put(key, decision.model_dump_json(indent=2).encode(), "application/json")
        return key

    def decisions(self, limit: int = 20) -> list[GateDecision]:
        """The latest gate decisions, newest first."""
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=layout.GATE_DECISIONS_PREFIX
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return [GateDecision.model_validate_json(self.get(key)) for key in sorted(keys, reverse=True)[:limit]]

    def last_trigger(self) -> datetime | None:
        """When the drift trigger last started a run (the cool-down's reference)."""
        try:
            return datetime.fromisoformat(self.get(layout.RETRAIN_TRIGGER_KEY).decode().strip())
        except KeyError:
            return None

    def set_last_trigger(self, at: datetime) -> None:
        self.put(layout.RETRAIN_TRIGGER_KEY, at.isoformat().encode(), "text/plain")


class NoLabelledRows:
    """A LabelledRowSource with nothing in it (a stage without feedback capture)."""

    def labelled_rows(self, since: datetime | None = None) -> list[Any]:
        return []


def labelled_row_source(s3: Any, bucket: str) -> LabelledRowSource:
    """The stage's labelled rows: feedback joined with captured features, when monitoring is installed."""
    try:
        from functions.adapters.monitoring_store import S3LabelledRowSource, S3MonitoringStore
    except ImportError:
        return NoLabelledRows()
    return S3LabelledRowSource(S3MonitoringStore(s3, bucket))
