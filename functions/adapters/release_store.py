"""A release's S3 side: the source stage's gate decisions and rollout outcomes, the target's release records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from functions.adapters.s3_objects import get_bytes
from functions.core import layout
from functions.core.gate import GateDecision
from functions.core.release import ReleaseRecord, RolloutPassed

_OUTCOME_FILE = "/outcome.json"


class S3ReleaseEvidence:
    """The source stage's records of a version's way to live (retrain/decisions/, rollouts/<run>/outcome.json)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def gate_decision(self, version: str) -> GateDecision | None:
        for key in self._keys_newest_first(layout.GATE_DECISIONS_PREFIX):
            decision = GateDecision.model_validate_json(get_bytes(self._s3, self._bucket, key))
            if decision.candidate.version == version and decision.promote:
                return decision
        return None

    def rollout_outcome(self, version: str) -> RolloutPassed | None:
        for key in self._keys_newest_first(layout.ROLLOUT_PREFIX):
            if not key.endswith(_OUTCOME_FILE):
                continue
            outcome = orjson.loads(get_bytes(self._s3, self._bucket, key))
            if outcome.get("candidate") == version and outcome.get("action") == "promote":
                run_id = key[len(layout.ROLLOUT_PREFIX) : -len(_OUTCOME_FILE)]
                return RolloutPassed.model_validate({**outcome, "run_id": run_id})
        return None

    def _keys_newest_first(self, prefix: str) -> Iterator[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return iter(sorted(keys, reverse=True))  # decision keys and run ids start with their time


class S3ReleaseRecords:
    """The target stage's release records, each written once beside its bundle (models/ takes only new keys)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def put_release(self, record: ReleaseRecord) -> str:
        key = layout.release_record_key(
            record.version, record.released_at.strftime("%Y%m%dT%H%M%S%fZ"), record.source_stage
        )
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=record.model_dump_json(indent=2).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
        return key

    def releases(self, version: str) -> list[ReleaseRecord]:
        """Every release record of `version`, oldest first."""
        prefix = f"{layout.MODELS_PREFIX}{version}/releases/"
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        return [ReleaseRecord.model_validate_json(get_bytes(self._s3, self._bucket, key)) for key in keys]
