"""The emulator tier's parts: what it deploys, how it drives the deployment, what it reports.

The summary printed at the end of the tier lists the resources created out of those in
the template, every check and its outcome, the seconds of each phase, and what the
emulator cannot do (LIMITS, mirrored in docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tests.assembly import CDK, PROJECT_ROOT
from tests.e2e.emulator import RUNTIME_PYTHON, Emulator

STACK = "slipway-dev"
ACCOUNT = "000000000000"
REGION = "us-east-1"
BOOTSTRAP_TIMEOUT_SECONDS = 300
DEPLOY_TIMEOUT_SECONDS = 900
COMMAND_TIMEOUT_SECONDS = 300
# The lake's objects before `slipway train` (day, first row, end row of the example data); a retrain adds day 3.
LAKE_DAYS = ((1, 0, 300), (2, 300, 500))

# What MiniStack 1.5.33 cannot do for this stack, and what covers it instead.
LIMITS = {
    "Front doors": "http is deployed (a stack update) and called signed, but the emulator only checks that an IAM "
    "route's request has an Authorization header, keeps throttles without enforcing them and writes no access log "
    "or metric; function_url is not deployed. Both are asserted on their templates (tests/infra/test_front_door.py) "
    "and every type's event runs through the handler (tests/functions/inference/test_api_contract.py).",
    "Firehose delivery": "Logs subscriptions to Firehose are stored but never deliver: the tier writes the captured "
    "lines to capture/ itself, as Firehose would; the capture format is tested in tests/functions/inference. "
    "A label file the deployed monitor takes lands in the current hour, after the window it judges, so its count "
    "in live quality is asserted under moto (tests/functions/monitor/test_monitor.py); here its join with the "
    "keyed row the deployed API captured is checked.",
    "EMF metrics": "EMF lines do not become CloudWatch metrics: EMF output is parsed in the handler and monitor tests.",
    "Alarm state changes to EventBridge": "alarms are created but never evaluated, so the rollback rule is not fired "
    "by an alarm: the rollback watcher's handler runs on a real alarm event in tests/infra/test_packages.py and "
    "tests/functions/retrain.",
    "Application Auto Scaling": "scalable targets are rejected, so prod (provisioned concurrency) is not deployed "
    "here: its scaling resources are asserted on the prod template in tests/infra/test_serving.py.",
    "Metric-math alarms": "rejected at create: the emulator stage sets alarms.metric_math=false (plain alarms on the "
    "numerator); the math alarms AWS gets are asserted in tests/infra/test_observability.py.",
    "Distributed Map ResultWriter": "the map runs and scores, but the result files it would write are not "
    "checked (nothing in Slipway reads them); moto runs the same definition in tests/slipway/test_local_stack.py.",
    "A rollout decided by figures": "with no Firehose delivery no shadowed row reaches capture/, so the deployed "
    "rollout state machine runs its steps and refuses for want of rows (checked); promotion by figures and refusal "
    "of a bad candidate run under moto with real traffic in tests/functions/rollout and tests/slipway.",
    "Bucket tags from CloudFormation": "not applied, and CDK's auto-delete handler checks a bucket's tag before "
    "emptying it on destroy: the tier tags the buckets as the template says before `cdk destroy`.",
    "SnapStart snapshots": "the published inference version is initialised at publish and its restore hook runs "
    "(checked), but in the same process: no memory is snapshotted and restored elsewhere, so the restored state "
    "itself (random generator, connections, credentials) is tested in tests/functions/inference/test_snap_start.py.",
    "Athena": "no stage here declares an Athena source (the emulator stage reads an S3 lake, whose Parquet objects "
    "the tier puts in the emulator's S3): the query request, the waiting, its failures, the reading of a result "
    "written as Athena writes it and the grants are tested in tests/functions/adapters/test_athena_queries.py, "
    "tests/functions/lake/test_ingest.py and tests/infra/test_data_source.py.",
    "IAM": "the emulator does not enforce the roles' policies: each function's normal paths run under moto with IAM "
    "enforced and exactly its role's policy instead (tests/infra/test_least_privilege.py), plus cdk-nag and "
    "tests/infra/test_iam.py. Nor the resource policies: the artifacts bucket's write-once rule under models/ "
    "and the REST API's invokers and writers are asserted on the templates (tests/infra/test_storage.py, "
    "tests/infra/test_serving.py), and the store's conditional writes run under moto.",
}


@dataclass
class Summary:
    """What the tier prints at the end."""

    python: str = ""
    resources: tuple[int, int] | None = None
    phases: dict[str, float] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    failed_phase: str | None = None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.failed_phase = self.failed_phase or name
            raise
        finally:
            self.phases[name] = time.monotonic() - started

    def lines(self) -> list[str]:
        lines = [f"emulator: MiniStack on Python {self.python}"]
        if self.python and not self.python.startswith(RUNTIME_PYTHON):
            lines.append(f"  (no Python {RUNTIME_PYTHON} on this machine: the functions ran on {self.python})")
        if self.resources:
            lines.append(f"resources created: {self.resources[0]} of {self.resources[1]} in the template")
        if self.failed_phase:
            lines.append(f"FAILED in phase: {self.failed_phase}")
        lines.append("checks:")
        lines += [f"  {outcome:7} {name}" for name, outcome in self.checks.items()]
        lines.append("seconds per phase:")
        lines += [f"  {seconds:7.1f}  {name}" for name, seconds in self.phases.items()]
        lines.append("not covered by the emulator (and what covers it instead):")
        lines += [f"  - {name}: {instead}" for name, instead in LIMITS.items()]
        return lines


SUMMARY = Summary()


@dataclass
class Deployment:
    """The dev stage deployed onto the emulator, and ways to drive it as a user would."""

    emulator: Emulator
    assembly: Path
    env: dict[str, str]

    @functools.cached_property
    def outputs(self) -> dict[str, str]:
        """The deployed stack's outputs."""
        [stack] = self.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.emulator.endpoint, region_name=REGION,
            aws_access_key_id="test", aws_secret_access_key="test",
        )  # fmt: skip

    def slipway(
        self, *args: str, timeout: int = COMMAND_TIMEOUT_SECONDS, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The real CLI against the emulator; fails the check with its output and the emulator's log on error."""
        result = subprocess.run(
            [str(PROJECT_ROOT / ".venv" / "bin" / "slipway"), *args], env=self.env, cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert result.returncode == 0 or not check, (
            f"slipway {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}\n"
            f"emulator log:\n{self.emulator.log_tail()}"
        )
        return result

    def cdk(self, *args: str, timeout: int) -> None:
        run_cdk(self.emulator, self.env, *args, timeout=timeout)


def run_cdk(emulator: Emulator, env: dict[str, str], *args: str, timeout: int) -> None:
    try:
        result = subprocess.run(
            [str(CDK), *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"cdk {args[0]} did not finish in {timeout} s; emulator log:\n{emulator.log_tail()}"
        ) from exc
    assert result.returncode == 0, (
        f"cdk {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}\n"
        f"emulator log:\n{emulator.log_tail(containing='ERROR') or emulator.log_tail()}"
    )
