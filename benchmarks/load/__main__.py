"""`python -m benchmarks.load` (`make load`): a bounded loopback load run with locust against the local stack.

Builds locust's own virtual environment (.venv/load) once, starts `slipway up` on
free loopback ports, builds the requests from the live model's feature spec (one
row, a batch, bad requests that must get their 4xx), runs locust headless for a
fixed time, stops the stack by its pid and prints requests, req/s, p50 and p99 per
kind. Exits 1 when any request did not get the answer it must get: a 5xx, no
answer, or an unexpected status. The plan, locust's log, the stack's log and the
figures (report.json) are kept in --dir.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.load.plan import Kind, request_plan, write_plan
from benchmarks.load.report import LoadReport, read_report, render_table
from benchmarks.load.stack_process import StackError, StackProcess
from benchmarks.tool_venv import tool_venv
from functions.core.features import FeatureSpec
from stage.settings import PROJECT_ROOT, load_settings

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
REQUIREMENTS = HERE / "requirements.txt"
RESULTS_DIR = PROJECT_ROOT / ".slipway" / "load"
STOP_TIMEOUT_S = 5  # a client finishes the request in flight when the time is up
EXIT_FAILED = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--users", type=int, default=32, help="concurrent keep-alive clients (default: 32)")
    parser.add_argument("--seconds", type=int, default=60, help="how long the load runs (default: 60)")
    parser.add_argument("--stage", default="dev", help="stage whose settings the local stack runs (default: dev)")
    parser.add_argument("--url", help="load an endpoint already running here instead of starting the local stack")
    parser.add_argument("--dir", default=str(RESULTS_DIR), help="where the plan, logs and report.json go")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated rows")
    args = parser.parse_args(argv)
    if args.users < 1 or args.seconds < 1:
        parser.error("--users and --seconds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "plan.json"):
        (out / stale).unlink(missing_ok=True)
    print("locust's virtual environment (.venv/load) ...", flush=True)
    locust = tool_venv("load", REQUIREMENTS, Path(sys.executable))
    stack = None
    try:
        url = args.url.rstrip("/") if args.url else None
        if url is None:
            print("starting the local stack (slipway up) ...", flush=True)
            stack = StackProcess.start(stage=args.stage, log_path=out / "stack.log")
            stack.wait_ready()
            url = stack.url
        model = get_json(f"{url}/model")
        max_instances = load_settings(args.stage).inference.max_instances
        kinds = request_plan(FeatureSpec.model_validate(model["feature_spec"]), max_instances=max_instances)
        write_plan(kinds, out / "plan.json")
        print(f"{args.users} clients for {args.seconds} s on {url}, model {model['version']}: {describe(kinds)}")
        returncode = run_locust(locust, url, users=args.users, seconds=args.seconds, out=out)
    except StackError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if stack is not None:
            stack.stop()
    report_path = out / "report.json"
    if not report_path.is_file():
        log = (out / "locust.log").read_text(errors="replace").splitlines()[-30:]
        print(f"load: locust exited with {returncode} and no report:\n" + "\n".join(log), file=sys.stderr)
        return EXIT_FAILED
    report = read_report(report_path)
    print_report(report, out)
    return 0 if report.passed else EXIT_FAILED


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def describe(kinds: list[Kind]) -> str:
    total = sum(kind.weight for kind in kinds)
    return ", ".join(f"{kind.name} {kind.weight / total:.0%} ({len(kind.requests)} bodies)" for kind in kinds)


def run_locust(python: Path, url: str, *, users: int, seconds: int, out: Path) -> int:
    """Locust headless for `seconds`; its own log goes to out/locust.log, its figures to out/report.json."""
    command = [
        str(python), "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
        "--stop-timeout", str(STOP_TIMEOUT_S), "--host", url,
        "--plan", str(out / "plan.json"), "--report", str(out / "report.json"),
    ]  # fmt: skip
    # No locust.conf or [tool.locust] of the working directory applies: it runs in the output folder.
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with (out / "locust.log").open("wb") as log:
        result = subprocess.run(
            command, cwd=out, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            timeout=seconds + STOP_TIMEOUT_S + 120, check=False,
        )  # fmt: skip
    return result.returncode


def print_report(report: LoadReport, out: Path) -> None:
    print()
    print(render_table(report.kinds))
    for error in sorted(report.errors, key=lambda e: -int(e["occurrences"]))[:10]:
        print(f"  {error['occurrences']:>7,} x {error['kind']}: {error['error']}")
    total = report.total
    verdict = "passed" if report.passed else "FAILED"
    print(
        f"\n{verdict}: {total.requests:,} requests from {report.users} clients, {report.server_errors:,} server errors "
        f"(5xx or no answer), {total.unexpected_answers:,} unexpected answers; figures in {out / 'report.json'}"
    )


if __name__ == "__main__":
    sys.exit(main())
