"""Batch scoring throughput: rows per second through the scoring use case (parse CSV, validate, score, write).

In-process moto S3 holds the input and outputs, so the figure is this machine's
CPU cost of scoring a file, without network time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time

import boto3
from moto import mock_aws

from benchmarks.table import Row
from benchmarks.workload import Workload
from functions.adapters.batch_store import S3BatchStore
from functions.core.batch import BatchItem
from functions.core.predictor import Predictor
from functions.inference import batch_service
from functions.inference.live_model import Serving

ROWS = 100_000


def _csv(workload: Workload, rows: int) -> bytes:
    body = json.loads(workload.batch_bodies[0])["instances"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(body[0]), lineterminator="\n")
    writer.writeheader()
    for index in range(rows):
        writer.writerow(body[index % len(body)])
    return out.getvalue().encode()


def run(workload: Workload, *, quick: bool = False) -> list[Row]:
    rows = ROWS // 10 if quick else ROWS
    data = _csv(workload, rows)
    bundle = workload.bundle
    serving = Serving(Predictor(bundle.manifest, bundle.onnx_bytes), bundle.version, bundle.manifest.fallback, None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        s3.create_bucket(Bucket="bench-batch")
        s3.put_object(Bucket="bench-batch", Key="batch/in/rows.csv", Body=data)
        store = S3BatchStore(s3, "bench-batch")
        item = BatchItem(key="batch/in/rows.csv", etag="x", input_prefix="batch/in/", output_prefix="batch/out/")
        started = time.perf_counter()
        entry = batch_service.score_object(store, item, serving)
        elapsed = time.perf_counter() - started
    assert entry.rows == rows and entry.errors == 0
    return [
        Row(
            figure=f"batch scoring, one CSV object of {rows:,} rows (parse, validate, score, write)",
            unit="rows/s",
            ours=round(rows / elapsed),
            note="batch: one scoring invocation in-process against moto S3; a Distributed Map runs such "
            "invocations in parallel (batch.max_concurrency).",
        )
    ]
