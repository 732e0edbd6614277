"""Batch scoring use cases: plan the delta of a prefix, and score one object.

Scoring is `service.predict`, the /predict use case, on the rows the live
feature spec accepts; refused rows go to the errors object with their lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import TypeAdapter

from functions.adapters.batch_store import S3BatchStore
from functions.core import batch, layout
from functions.core.batch import BatchItem, LedgerEntry, RowError
from functions.core.errors import InvalidRequest
from functions.inference import service
from functions.inference.live_model import Serving

_ITEMS = TypeAdapter(list[BatchItem])


@dataclass(frozen=True)
class Plan:
    """What a run will score: the manifest the Distributed Map reads, and how many objects it lists."""

    run_id: str
    manifest_key: str
    count: int
    unchanged: int


def manifest_key(run_id: str) -> str:
    return f"{layout.BATCH_RUNS_PREFIX}{run_id}/manifest.json"


def plan(store: S3BatchStore, *, input_prefix: str, output_prefix: str, run_id: str) -> Plan:
    """List the input, drop what the ledger says is scored already (same key, same ETag), write the manifest."""
    batch.check_prefixes(input_prefix, output_prefix)
    objects = [(key, etag) for key, etag in store.list_objects(input_prefix) if key.endswith(batch.CSV_SUFFIX)]
    ledger = (key for key, _ in store.list_objects(f"{output_prefix}{batch.LEDGER_DIR}"))
    items = batch.delta(objects, ledger, input_prefix=input_prefix, output_prefix=output_prefix)
    key = manifest_key(run_id)
    store.put(key, _ITEMS.dump_json(items), content_type="application/json")
    return Plan(run_id=run_id, manifest_key=key, count=len(items), unchanged=len(objects) - len(items))


def read_manifest(store: S3BatchStore, key: str) -> list[BatchItem]:
    return _ITEMS.validate_json(store.get(key)[0])


def score_object(store: S3BatchStore, item: BatchItem, serving: Serving) -> LedgerEntry:
    """Score one CSV object: scored rows, an errors object for refused lines, then the ledger entry."""
    data, etag = store.get(item.key)
    item = item.model_copy(update={"etag": batch.normalise_etag(etag)})  # the version actually read
    parsed = batch.parse_csv(data, serving.predictor.manifest.feature_spec if serving.predictor else None)
    lines, rows, errors = parsed.lines, parsed.rows, list(parsed.errors)
    if serving.predictor is not None and rows:
        try:
            serving.predictor.encode(rows)
        except InvalidRequest as exc:
            refused = batch.refused_rows(exc, lines)
            errors.extend(RowError(lines[index], message) for index, message in refused.items())
            kept = [index for index in range(len(rows)) if index not in refused]
            lines, rows = [lines[i] for i in kept], [rows[i] for i in kept]
    outcome = service.predict(serving, rows) if rows else None
    version = outcome.version if outcome else serving.version
    classes = list(serving.predictor.manifest.classes or ()) if serving.predictor else []
    if not classes and serving.fallback and serving.fallback.probabilities:
        classes = sorted(serving.fallback.probabilities)
    metadata = {"model-version": version or "none", "row-count": str(len(rows)), "source-etag": item.etag}
    out_key = batch.output_key(item)
    store.put(
        out_key,
        batch.scored_csv(lines, outcome.predictions if outcome else [], classes),
        content_type="text/csv",
        metadata=metadata | {"error-count": str(len(errors))},
    )
    err_key = None
    if errors:
        err_key = batch.errors_key(item)
        store.put(err_key, batch.errors_csv(errors), content_type="text/csv", metadata=metadata)
    entry = LedgerEntry(
        key=item.key,
        etag=item.etag,
        model_version=version,
        rows=len(rows),
        errors=len(errors),
        output_key=out_key,
        errors_key=err_key,
    )
    # Written last: an object is in the delta again until its outputs are complete.
    store.put(batch.ledger_key(item), entry.model_dump_json().encode(), content_type="application/json")
    return entry


def summary(entries: list[LedgerEntry]) -> dict[str, object]:
    return json.loads(
        json.dumps(
            {
                "objects": len(entries),
                "rows": sum(e.rows for e in entries),
                "errors": sum(e.errors for e in entries),
                "model_versions": sorted({e.model_version or "none" for e in entries}),
            }
        )
    )
