"""A data source's Athena query: started in its workgroup and database, waited for, its result located."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.s3_objects import error_code
from functions.core.data_source import DataSource, S3Location, parse_s3_uri
from functions.lake.tables import DataError

_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueries:
    """Runs `data.query` with boto3's Athena API; the result is the CSV Athena writes under `data.output_uri`."""

    def __init__(
        self, athena: Any, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._athena = athena
        self._sleep = sleep
        self._clock = clock

    def run(self, source: DataSource) -> S3Location:
        """The result object of one execution of the source's query; DataError naming the query when it fails."""
        try:
            execution = self._athena.start_query_execution(
                QueryString=source.query,
                QueryExecutionContext={"Database": source.database},
                WorkGroup=source.workgroup,
                ResultConfiguration={"OutputLocation": source.output_uri},
            )["QueryExecutionId"]
        except ClientError as exc:
            raise DataError(f"Athena refused the data query in {source.database!r}: {error_code(exc)} ({exc})") from exc
        deadline = self._clock() + source.query_timeout_seconds
        pause = 0.5
        while True:
            state = self._athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
            status = state["Status"]
            if status["State"] in _DONE:
                break
            if self._clock() >= deadline:
                self._athena.stop_query_execution(QueryExecutionId=execution)
                raise DataError(
                    f"Athena query {execution} did not finish within {source.query_timeout_seconds} s "
                    "(data.query_timeout_seconds) and was stopped"
                )
            self._sleep(pause)
            pause = min(pause * 2, 5.0)
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage", "")
            raise DataError(f"Athena query {execution} {status['State']}: {reason}")
        return parse_s3_uri(state["ResultConfiguration"]["OutputLocation"])
