"""The load run's figures per request kind, as the locustfile reports them, and the verdict on them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KindFigures:
    """Locust's figures for one kind of request (or `all` of them)."""

    kind: str
    requests: int
    failures: int
    server_errors: int
    connection_errors: int
    unexpected_answers: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class LoadReport:
    users: int
    kinds: list[KindFigures]
    errors: list[dict[str, Any]]

    @property
    def total(self) -> KindFigures:
        return self.kinds[-1]

    @property
    def server_errors(self) -> int:
        """5xx answers and requests without an answer: what a bounded load must never cause."""
        return self.total.server_errors + self.total.connection_errors

    @property
    def passed(self) -> bool:
        """Traffic flowed, and every request got the answer it must get."""
        return self.total.requests > 0 and self.total.failures == 0


def read_report(path: Path) -> LoadReport:
    data = json.loads(path.read_text())
    return LoadReport(
        users=int(data["users"]),
        kinds=[KindFigures(**kind) for kind in data["kinds"]],
        errors=list(data["errors"]),
    )


def render_table(kinds: Sequence[KindFigures]) -> str:
    """An aligned plain-text table that is also valid Markdown."""
    header = ("request kind", "requests", "req/s", "p50", "p99", "server errors", "other failures")
    lines = [
        (
            k.kind,
            f"{k.requests:,}",
            f"{k.requests_per_second:,.0f}",
            f"{k.p50_ms:g} ms",
            f"{k.p99_ms:g} ms",
            f"{k.server_errors + k.connection_errors:,}",
            f"{k.unexpected_answers:,}",
        )
        for k in kinds
    ]
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])
