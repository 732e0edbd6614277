"""Slipway's benchmarks: speed, memory and size against a naive baseline, measured in one run.

`python -m benchmarks` runs every section on the same trained bundle and the
same events and prints one Markdown table. Each section is a module with a
`run(workload, options) -> list[Row]` function; `__main__` lists them in order.
Nothing here runs inside pytest, and nothing here is deployed.
"""

from __future__ import annotations

from benchmarks.table import Row, render_markdown

__all__ = ["Row", "render_markdown"]
