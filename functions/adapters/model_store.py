"""Model bundles in S3: `models/<version>/model.onnx` and `models/<version>/manifest.json`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code, get_bytes
from functions.core import layout
from functions.core.errors import BundleError
from functions.core.manifest import Manifest


class S3ModelStore:
    """Reads and writes bundles in the artifacts bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def put_bundle(self, manifest: Manifest, onnx_bytes: bytes) -> bool:
        """Write a bundle once; False (and no write) when the version already exists.

        Both objects are written only if absent (S3's If-None-Match: *, which the bucket policy demands under
        models/), so no one overwrites a version, and two registrations of one version cannot interleave. The
        graph first: a manifest is only ever visible beside its graph.
        """
        self._put_once(layout.model_key(manifest.version), onnx_bytes, "application/octet-stream")
        return self._put_once(layout.manifest_key(manifest.version), manifest.to_json(), "application/json")

    def get_manifest(self, version: str) -> Manifest:
        """A version's manifest; KeyError when there is none."""
        raw = self._get(layout.manifest_key(version))
        try:
            return Manifest.model_validate_json(raw)
        except ValueError as exc:
            raise BundleError(f"manifest of {version} is malformed: {exc}") from exc

    def get_bundle(self, version: str) -> tuple[Manifest, bytes]:
        """A version's manifest and graph; KeyError when either is missing."""
        return self.get_manifest(version), self._get(layout.model_key(version))

    def list_versions(self) -> list[str]:
        """Registered versions, sorted."""
        paginator = self._s3.get_paginator("list_objects_v2")
        versions = []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=layout.MODELS_PREFIX, Delimiter="/"):
            for prefix in page.get("CommonPrefixes", []):
                versions.append(prefix["Prefix"][len(layout.MODELS_PREFIX) :].rstrip("/"))
        return sorted(versions)

    def _get(self, key: str) -> bytes:
        return get_bytes(self._s3, self._bucket, key)

    def _put_once(self, key: str, body: bytes, content_type: str) -> bool:
        """Write `key` unless it exists; whether this call wrote it."""
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True
