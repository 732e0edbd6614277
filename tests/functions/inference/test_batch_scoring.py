"""Batch scoring: the delta, outputs with model version and row count, malformed rows, the state machine."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.core import batch
from functions.core.batch import BatchItem
from functions.core.features import Feature, FeatureSpec, FeatureType
from functions.training.train import Bundle
from slipway.local.batch_scoring import BatchScoringService
from slipway.local.services import LocalContext
from stage.names import ResourceNames
from stage.settings import load_settings
from tests.conftest import example_row

INPUT, OUTPUT = "batch/in/", "batch/out/"


def csv_bytes(rows: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return (out.getvalue() + "".join(line + "\n" for line in extra_lines)).encode()


@pytest.fixture
def machine(
    live_bundle: Bundle, names: ResourceNames, handler_env: None, tmp_path: Any
) -> Iterator[BatchScoringService]:
    """The local stack's batch service: the CDK definition in moto, calling the real handlers."""
    service = BatchScoringService()
    settings = load_settings("dev")
    service.start(LocalContext(settings=settings, names=names, aws_endpoint="", log_dir=tmp_path))
    yield service
    service.stop()


def run(service: BatchScoringService, run_id: str) -> dict[str, Any]:
    assert service.runner is not None and service.state_machine_arn is not None
    from slipway.batch import execution_input, run_summary

    result = service.runner.run(service.state_machine_arn, execution_input(INPUT, OUTPUT, run_id))
    assert result.succeeded, (result.error, result.cause)
    return run_summary(service.bucket, result.output)


def put(names: ResourceNames, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=names.artifacts_bucket, Key=key, Body=body)


def get(names: ResourceNames, key: str) -> tuple[str, dict[str, str]]:
    response = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=key)
    return response["Body"].read().decode(), response["Metadata"]


def test_first_run_scores_all_second_none_a_changed_object_only_it(
    machine: BatchScoringService, live_bundle: Bundle, names: ResourceNames
) -> None:
    files = {f"{INPUT}part-{i}.csv": [example_row(live_bundle, 10 * i + j) for j in range(5)] for i in range(3)}
    for key, rows in files.items():
        put(names, key, csv_bytes(rows))
    put(names, f"{INPUT}notes.txt", b"not a csv: ignored")

    first = run(machine, "first")
    assert (first["objects"], first["rows"], first["errors"], first["unchanged"]) == (3, 15, 0, 0)
    assert first["model_versions"] == [live_bundle.version]
    for key in files:
        text, metadata = get(names, OUTPUT + key[len(INPUT) :] + batch.SCORED_SUFFIX)
        assert metadata["model-version"] == live_bundle.version and metadata["row-count"] == "5"
        scored = list(csv.DictReader(io.StringIO(text)))
        assert [row["line"] for row in scored] == ["2", "3", "4", "5", "6"]
        assert all(row["label"] in live_bundle.manifest.classes for row in scored)

    second = run(machine, "second")
    assert (second["objects"], second["unchanged"]) == (0, 3)

    changed = f"{INPUT}part-1.csv"
    put(names, changed, csv_bytes(files[changed][:2]))
    third = run(machine, "third")
    assert (third["objects"], third["rows"], third["unchanged"]) == (1, 2, 2)
    assert get(names, OUTPUT + "part-1.csv" + batch.SCORED_SUFFIX)[1]["row-count"] == "2"


def test_a_malformed_row_lands_in_the_errors_object_and_the_rest_is_scored(
    machine: BatchScoringService, live_bundle: Bundle, names: ResourceNames
) -> None:
    rows = [example_row(live_bundle, i) for i in range(4)]
    rows[1] = {**rows[1], "mean_radius": "huge"}
    put(names, f"{INPUT}mixed.csv", csv_bytes(rows, extra_lines=("1,2,3",)))

    summary = run(machine, "mixed")
    assert (summary["objects"], summary["rows"], summary["errors"]) == (1, 3, 2)
    text, metadata = get(names, f"{OUTPUT}mixed.csv{batch.SCORED_SUFFIX}")
    assert metadata["row-count"] == "3" and metadata["error-count"] == "2"
    assert [row["line"] for row in csv.DictReader(io.StringIO(text))] == ["2", "4", "5"]
    errors = list(csv.DictReader(io.StringIO(get(names, f"{OUTPUT}mixed.csv{batch.ERRORS_SUFFIX}")[0])))
    assert [row["line"] for row in errors] == ["3", "6"]
    assert "mean_radius" in errors[0]["error"] and "fields" in errors[1]["error"]


def test_the_delta_skips_exact_versions_in_the_ledger() -> None:
    item = BatchItem(key=f"{INPUT}a.csv", etag="e1", input_prefix=INPUT, output_prefix=OUTPUT)
    listing = [(f"{INPUT}a.csv", '"e1"'), (f"{INPUT}b.csv", '"e2"'), (f"{INPUT}c.json", '"e3"')]
    planned = batch.delta(listing, [batch.ledger_key(item)], input_prefix=INPUT, output_prefix=OUTPUT)
    assert [p.key for p in planned] == [f"{INPUT}b.csv"]
    assert batch.ledger_key(item) == f"{OUTPUT}_ledger/a.csv/e1.json"


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("data/", OUTPUT, "under batch/"),
        (INPUT, "batch/_runs/x/", "under batch/"),
        ("batch/in", OUTPUT, "end with '/'"),
        ("batch/", OUTPUT, "must not contain"),
    ],
)
def test_prefixes_outside_batch_or_overlapping_are_refused(source: str, target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch.check_prefixes(source, target)


def test_parse_csv_numbers_blanks_and_line_numbers() -> None:
    parsed = batch.parse_csv(b"a,b\n1.5,\n\nx,2\n1,2,3\n")
    assert parsed.rows == [{"a": 1.5, "b": None}, {"a": "x", "b": 2.0}]
    assert parsed.lines == [2, 4]
    assert [(e.line, "3 fields" in e.message) for e in parsed.errors] == [(5, True)]
    assert json.loads(json.dumps(parsed.rows))  # JSON-able, as a /predict body would be


def test_parse_csv_reads_bare_carriage_returns_and_names_an_unreadable_line() -> None:
    assert batch.parse_csv(b"a,b\r1,2\r\n3,4\r").rows == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    parsed = batch.parse_csv(b"a\n1\n" + b"x" * (csv.field_size_limit() + 1) + b"\n")
    assert parsed.rows == [{"a": 1.0}]
    assert [(e.line, e.message.startswith("unreadable CSV")) for e in parsed.errors] == [(3, True)]


def test_parse_csv_types_each_cell_as_its_feature_is_typed() -> None:
    """Codes that look like numbers stay category texts; booleans read as pandas and people write them."""
    spec = FeatureSpec(features=[
        Feature(name="plan", type=FeatureType.CATEGORY, categories=("01", "02", "x"), impute="01"),
        Feature(name="member", type=FeatureType.BOOLEAN, impute=False),
        Feature(name="age", type=FeatureType.NUMBER, precision=0, impute=40.0),
    ])  # fmt: skip
    data = b"plan,member,age,other\n01,True,41,7\n 02 ,no,,z\nx,maybe,40,\n"
    parsed = batch.parse_csv(data, spec)
    assert parsed.rows == [
        {"plan": "01", "member": True, "age": 41.0, "other": 7.0},
        {"plan": "02", "member": False, "age": None, "other": "z"},
        {"plan": "x", "member": "maybe", "age": 40.0, "other": None},  # 'maybe' is refused by the spec, by name
    ]
    assert batch.parse_csv(data).rows[0]["plan"] == 1.0, "without a spec a code reads as a number"
