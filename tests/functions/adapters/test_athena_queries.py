"""The Athena query of a data source: the request Athena receives, waiting for it, and its failures by name."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.adapters.athena_queries import AthenaQueries
from functions.core.data_source import DataSource, S3Location
from functions.lake.tables import DataError

SOURCE = DataSource(
    kind="athena", query="SELECT * FROM sales WHERE dt >= '2026-11-01'", database="lake", workgroup="analysts",
    output_uri="s3://acme-athena/results/", uris=("s3://acme-lake/sales/",), target="churned", query_timeout_seconds=30,
)  # fmt: skip
REQUEST = {
    "QueryString": SOURCE.query,
    "QueryExecutionContext": {"Database": "lake"},
    "WorkGroup": "analysts",
    "ResultConfiguration": {"OutputLocation": "s3://acme-athena/results/"},
}


def _state(state: str, **status: Any) -> dict[str, Any]:
    return {
        "QueryExecution": {
            "QueryExecutionId": "q-1",
            "Status": {"State": state, **status},
            "ResultConfiguration": {"OutputLocation": "s3://acme-athena/results/q-1.csv"},
        }
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _queries(stubber_states: list[dict[str, Any]], *, stop: bool = False) -> tuple[AthenaQueries, Stubber, _Clock]:
    athena = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(athena)
    stubber.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, REQUEST)
    for state in stubber_states:
        stubber.add_response("get_query_execution", state, {"QueryExecutionId": "q-1"})
    if stop:
        stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
    clock = _Clock()
    return AthenaQueries(athena, sleep=clock.sleep, clock=lambda: clock.now), stubber, clock


def test_the_query_runs_in_its_database_and_workgroup_and_its_csv_result_is_located() -> None:
    queries, stubber, clock = _queries([_state("QUEUED"), _state("RUNNING"), _state("SUCCEEDED")])
    with stubber:
        assert queries.run(SOURCE) == S3Location(bucket="acme-athena", prefix="results/q-1.csv")
    stubber.assert_no_pending_responses()
    assert clock.slept == [0.5, 1.0], "waits with a growing pause"


def test_a_failed_query_stops_the_run_with_athena_s_reason() -> None:
    failed = _state("FAILED", StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'churn' cannot be resolved")
    queries, stubber, _ = _queries([failed])
    with stubber, pytest.raises(DataError, match=r"Athena query q-1 FAILED: COLUMN_NOT_FOUND.*'churn'"):
        queries.run(SOURCE)


def test_a_query_past_its_timeout_is_stopped_and_named() -> None:
    queries, stubber, _ = _queries([_state("RUNNING")] * 10, stop=True)  # waited 32.5 s by then
    with stubber, pytest.raises(DataError, match=r"q-1 did not finish within 30 s .* was stopped"):
        queries.run(SOURCE)
    stubber.assert_no_pending_responses()


def test_a_refused_query_is_named() -> None:
    athena = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(athena)
    stubber.add_client_error("start_query_execution", "InvalidRequestException", "workgroup analysts is disabled")
    with stubber, pytest.raises(DataError, match="Athena refused the data query in 'lake': InvalidRequestException"):
        AthenaQueries(athena).run(SOURCE)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"query": None}, r"missing: \['query'\]"),
        ({"output_uri": "results/"}, "not an S3 location"),
        ({"uris": ()}, r"missing: \['uris'\]"),
    ],
)
def test_an_incomplete_athena_declaration_is_refused_by_name(declared: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataSource.model_validate({**SOURCE.model_dump(), **declared})
