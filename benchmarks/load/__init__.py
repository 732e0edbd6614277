"""`make load`: a bounded load run with locust against the local stack on loopback.

`python -m benchmarks.load` drives it; `plan` builds the requests from the live
model's feature spec, `stack_process` runs `slipway up` as a child process,
`locustfile` is what locust runs (in its own virtual environment, `.venv/load`),
and `report` reads its figures back.
"""

from __future__ import annotations

from benchmarks.load.plan import Kind, PlannedRequest, request_plan
from benchmarks.load.report import KindFigures, LoadReport, read_report, render_table

__all__ = ["Kind", "KindFigures", "LoadReport", "PlannedRequest", "read_report", "render_table", "request_plan"]
