"""`python -m benchmarks`: train once, run every section on the same bundle and events, print one table.

The table is also written as JSON to `.slipway/bench.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks import (
    batch_throughput,
    cold_start,
    cost,
    drift,
    drift_evidently,
    estimated_quality,
    lake,
    local_loop,
    outliers,
    package_size,
    readme,
    rollout,
    training_scale,
    warm_latency,
)
from benchmarks.table import Row, render_markdown
from benchmarks.workload import PROJECT_ROOT, Workload, build_workload

Section = Callable[..., list[Row]]
# In order; later issues add theirs here (drift over 1M rows, local loop, batch throughput).
SECTIONS: dict[str, Section] = {
    "warm": warm_latency.run,
    "rollout": rollout.run,
    "outliers": outliers.run,
    "cold": cold_start.run,
    "package": package_size.run,
    "batch": batch_throughput.run,
    "drift": drift.run,
    "drift_evidently": drift_evidently.run,
    "estimated_quality": estimated_quality.run,
    "local_loop": local_loop.run,
    "training": training_scale.run,
    "lake": lake.run,
    "cost": cost.run,
}
# The sections that measure every model of benchmarks/deployed_models.py, not the example alone.
MODEL_SECTIONS = {"warm", "cold"}
RESULTS_PATH = PROJECT_ROOT / ".slipway" / "bench.json"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--skip-package", action="store_true", help="do not build the deployment packages")
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations (a smoke run, not figures)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    parser.add_argument("--output", default=str(RESULTS_PATH), help="where to write the JSON table")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rewrite docs/performance.md's table and README.md's headline figures from this run",
    )
    args = parser.parse_args(argv)
    if args.readme and (args.only or args.quick or args.skip_package):
        parser.error("--readme takes a whole run: no --only, --quick or --skip-package")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # as the Makefile does
    info = machine()
    print(
        f"machine: {info['platform']}, {info['cpu_count']} CPUs, {info['implementation']} {info['python']}",
        flush=True,
    )
    started = time.perf_counter()
    selected = args.only or list(SECTIONS)
    workload = build_workload(extra_models=bool(MODEL_SECTIONS & set(selected)))
    trained = ", ".join(f"{model.label} {model.bundle.version[:12]}" for model in workload.models)
    print(f"trained {trained} in {time.perf_counter() - started:.1f} s", flush=True)
    if args.skip_package and "package" in selected:
        selected.remove("package")
    rows: list[Row] = []
    timings: dict[str, float] = {}
    try:
        for name in selected:
            section_started = time.perf_counter()
            print(f"running {name} ...", flush=True)
            rows.extend(SECTIONS[name](workload, quick=args.quick))
            timings[name] = round(time.perf_counter() - section_started, 1)
    finally:
        shutil.rmtree(workload.workdir, ignore_errors=True)
    table = render_markdown(rows)
    print()
    print(table)
    print(f"\n(total {time.perf_counter() - started:.0f} s; sections {timings})")
    _write_json(args.output, info, rows, args, timings, workload)
    if args.readme:
        measured = (
            f"Measured {datetime.now(UTC):%Y-%m-%d} by `make bench` on {info['cpu_count']} CPUs "
            f"({info['machine']}, {info['implementation']} {info['python']}):"
        )
        readme.write_tables(PROJECT_ROOT / "docs" / "performance.md", PROJECT_ROOT / "README.md", table, measured)
        print("docs/performance.md's table and README.md's headline figures rewritten")
    return 0


def _write_json(
    path: str,
    info: dict[str, Any],
    rows: list[Row],
    args: argparse.Namespace,
    timings: dict[str, float],
    workload: Workload,
) -> None:
    output = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": info,
        "model_version": workload.bundle.version,
        "section_seconds": timings,
        "rows": [row.as_dict() for row in rows],
    }
    target = os.path.abspath(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as file:
        json.dump(output, file, indent=2)
        file.write("\n")
    print(f"written to {os.path.relpath(target)}")


if __name__ == "__main__":
    sys.exit(main())
