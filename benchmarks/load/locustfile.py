"""Locust's side of `make load`: keep-alive clients posting the plan's requests to /predict as fast as answered.

Runs in `.venv/load` (locust's own pins), so it imports locust and the standard
library only; the driver (`python -m benchmarks.load`) writes the plan and reads
the report. Each answer is judged against the status its request must get:

- `server error`: any 5xx;
- `connection error`: no answer (refused, reset, timed out, cut short);
- `unexpected answer`: any other status than the expected one, or a 200 without
  one prediction per row.

Locust's own statistics (counts, requests/s, percentiles) go into the report, per kind and in total.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.contrib.fasthttp import LocustBadStatusCode

SERVER_ERROR = "server error"
CONNECTION_ERROR = "connection error"
UNEXPECTED = "unexpected answer"
# Each failure's outcome, with its count's key in the report.
OUTCOMES = {SERVER_ERROR: "server_errors", CONNECTION_ERROR: "connection_errors", UNEXPECTED: "unexpected_answers"}
TOTAL = "all"

_kinds: list[dict[str, Any]] = []
_weights: list[int] = []
# Failures by kind and outcome, counted here rather than parsed back from locust's error texts.
_outcomes: dict[str, dict[str, int]] = {}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--plan", required=True, help="the request plan (JSON) the driver wrote")
    parser.add_argument("--report", required=True, help="where to write the figures (JSON)")


@events.test_start.add_listener
def _load_plan(environment: Any, **_: Any) -> None:
    plan = json.loads(Path(environment.parsed_options.plan).read_text())
    for kind in plan["kinds"]:
        for request in kind["requests"]:
            request["payload"] = request["body"].encode()
    _kinds[:] = plan["kinds"]
    _weights[:] = [kind["weight"] for kind in _kinds]
    _outcomes.clear()
    _outcomes.update({kind["name"]: dict.fromkeys(OUTCOMES, 0) for kind in _kinds})


class PredictClient(FastHttpUser):
    """One keep-alive client that sends the next request as soon as the last one is answered."""

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    @task
    def predict(self) -> None:
        kind = random.choices(_kinds, weights=_weights)[0]
        request = random.choice(kind["requests"])
        with self.client.post(
            "/predict",
            data=request["payload"],
            headers={"Content-Type": request["content_type"]},
            name=kind["name"],
            catch_response=True,
        ) as response:
            problem = judge(response, request)
            if problem is None:
                response.success()
            else:
                _outcomes[kind["name"]][problem.split(":", 1)[0]] += 1
                response.failure(problem)


def judge(response: Any, request: dict[str, Any]) -> str | None:
    """None when the answer is the one `request` must get, else '<outcome>: <what happened>'."""
    status = response.status_code
    expected = request["expected_status"]
    if status >= 500:
        return f"{SERVER_ERROR}: HTTP {status} to {request['variant']}"
    exception = response.request_meta.get("exception")
    if status == 0 or (exception is not None and not isinstance(exception, LocustBadStatusCode)):
        return f"{CONNECTION_ERROR}: {exception!r}"  # no answer, or one cut short
    if status != expected:
        return f"{UNEXPECTED}: HTTP {status} to {request['variant']}, expected {expected}"
    if expected == 200:
        try:
            predictions = len(json.loads(response.content)["predictions"])
        except (ValueError, KeyError, TypeError):
            return f"{UNEXPECTED}: a 200 to {request['variant']} without predictions"
        if predictions != request["rows"]:
            return f"{UNEXPECTED}: {predictions} predictions for {request['rows']} rows"
    return None


@events.test_stop.add_listener
def _write_report(environment: Any, **_: Any) -> None:
    stats = environment.stats
    by_name = {entry.name: entry for entry in stats.entries.values()}
    entries = [(kind["name"], by_name[kind["name"]]) for kind in _kinds if kind["name"] in by_name]
    entries.append((TOTAL, stats.total))
    kinds = []
    for name, entry in entries:
        outcomes = (
            {o: sum(counts[o] for counts in _outcomes.values()) for o in OUTCOMES}
            if name == TOTAL
            else _outcomes.get(name, dict.fromkeys(OUTCOMES, 0))
        )
        kinds.append(
            {
                "kind": name,
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                **{OUTCOMES[outcome]: count for outcome, count in outcomes.items()},
                "requests_per_second": entry.total_rps,
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "max_ms": entry.max_response_time,
            }
        )
    errors = [
        {
            "kind": e.name,
            "error": str(e.error),
            "occurrences": e.occurrences,
            "first_seen_s": round(e.first_seen - stats.total.start_time, 3),
            "last_seen_s": round(e.last_seen - stats.total.start_time, 3),
        }
        for e in stats.errors.values()
    ]
    report = {"users": environment.parsed_options.num_users, "kinds": kinds, "errors": errors}
    Path(environment.parsed_options.report).write_text(json.dumps(report, indent=2) + "\n")
