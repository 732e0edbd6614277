"""The emulator tier: the dev stage deployed by `cdk deploy` onto MiniStack, then driven through its APIs.

One session fixture starts the emulator, bootstraps and deploys the synthesized dev
stage with its real packages, and hands the tests a `Deployment`; each test is one
check; the summary (tests/e2e/tier.py) is printed at the end of the run.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stage.settings import load_settings
from tests.assembly import CDK_ENV, template
from tests.e2e.emulator import Emulator, emulator_python
from tests.e2e.tier import (
    ACCOUNT,
    BOOTSTRAP_TIMEOUT_SECONDS,
    DEPLOY_TIMEOUT_SECONDS,
    LAKE_DAYS,
    REGION,
    STACK,
    SUMMARY,
    Deployment,
    run_cdk,
)
from tests.lake_data import partition


def seed_lake(deployment: Deployment) -> None:
    """The user's lake the stage declares (cdk.json's slipway:emulator `data`): two days of the example data."""
    [lake] = load_settings("dev", emulator=True).data.locations()
    s3 = deployment.client("s3")
    s3.create_bucket(Bucket=lake.bucket)
    for day, start, stop in LAKE_DAYS:
        key, body = partition(lake.prefix, day, start, stop)
        s3.put_object(Bucket=lake.bucket, Key=key, Body=body)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def deployment(emulator_assembly: Path) -> Iterator[Deployment]:
    with SUMMARY.phase("emulator install"):
        python, SUMMARY.python = emulator_python()
    emulator = Emulator(python)
    # SIGTERM (a CI runner giving up) stops the run like Ctrl-C, so the teardown below still runs.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with SUMMARY.phase("emulator start"):
            emulator.start()
        env = {
            **CDK_ENV,
            "AWS_ENDPOINT_URL": emulator.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        env.pop("AWS_PROFILE", None)
        with SUMMARY.phase("cdk bootstrap"):
            run_cdk(emulator, env, "bootstrap", f"aws://{ACCOUNT}/{REGION}", timeout=BOOTSTRAP_TIMEOUT_SECONDS)
        with SUMMARY.phase("cdk deploy"):
            run_cdk(
                emulator, env, "deploy", "--app", str(emulator_assembly), "--require-approval", "never",
                STACK, timeout=DEPLOY_TIMEOUT_SECONDS,
            )  # fmt: skip
        deployment = Deployment(emulator=emulator, assembly=emulator_assembly, env=env)
        with SUMMARY.phase("lake seed"):
            seed_lake(deployment)
        yield deployment
    finally:
        with SUMMARY.phase("emulator stop"):
            emulator.stop()
        signal.signal(signal.SIGTERM, previous)
        assert not emulator.workdir.exists(), "the emulator's temporary files outlived it"
        assert not emulator.left_running(), "a process of the emulator outlived it"


@pytest.fixture(scope="session")
def template_resources(emulator_assembly: Path) -> dict[str, Any]:
    return dict(template(emulator_assembly, STACK)["Resources"])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/e2e/test_emulator.py" not in report.nodeid.replace(os.sep, "/"):
        return
    name = report.nodeid.split("::", 1)[-1]
    if report.when == "call" or report.outcome != "passed":
        if report.when == "call" and report.outcome == "passed":
            SUMMARY.checks[name] = "passed"
        elif report.skipped:
            SUMMARY.checks[name] = "skipped"
        elif report.failed:
            SUMMARY.checks[name] = "FAILED"
        SUMMARY.phases.setdefault(name, report.duration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SUMMARY.checks and not SUMMARY.phases:
        return
    terminalreporter.section("emulator tier")
    for line in SUMMARY.lines():
        terminalreporter.write_line(line)
    sys.stdout.flush()
