"""Every Lambda package the stack builds runs from its own folder on the runtime's Python.

The dev stage is synthesized by the real CDK CLI for this host's architecture, once for
each runtime a stage may name (inference.runtime), the synths side by side, so each
package is exactly the folder the template's code asset points at. Every native module
in it must be built for that runtime's Python. Each handler the template names is then
imported and run once on a minimal event against moto, in an isolated interpreter of the
runtime's Python (`-I -S`: no project venv, no site-packages) whose path holds only the
package, boto3 and snapshot-restore-py, which the Lambda runtime provides. A module the
package lacks fails the test naming the package, the missing module and the module that
imported it. A runtime whose Python this machine lacks (python3.14 here) is built and
checked, not run.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from functions.adapters import factory
from functions.adapters.job_store import S3JobStore
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.jobs import JobMessage, JobRequest, new_job_id
from functions.core.registry import LivePointer, Registry
from functions.training.train import Bundle
from infra.bundling import find_runtime_interpreter, python_version_of
from slipway.local.lambda_runtime import HttpRequest, proxy_event
from slipway.local.stack import reset_moto
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import InferenceSettings, load_settings
from tests.assembly import Function, emulator_synth, functions, resolve, template
from tests.functions.core.conftest import variant
from tests.lake_data import partition

STACK = "slipway-dev"
RUNTIMES: tuple[str, ...] = get_args(InferenceSettings.model_fields["runtime"].annotation)
DEV_RUNTIME = load_settings("dev").inference.runtime  # the runtime of the session's emulator assembly
REGION = "us-east-1"
# Runs one handler the way Lambda's bootstrap does: import the module, call the function.
_RUNNER = r"""
import importlib, json, sys, traceback
package, runtime, handler, event = sys.argv[1:5]
sys.path[:0] = [package, runtime]
module_name, function_name = handler.rsplit(".", 1)
try:
    module = importlib.import_module(module_name)
except ImportError as exc:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(package)]
    importer = frames[-1].filename[len(package) + 1:] if frames else module_name
    print("IMPORT " + json.dumps({"missing": exc.name, "importer": importer, "error": str(exc)}))
    sys.exit(3)
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "package-test", 1024, "r1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:package-test"
    def get_remaining_time_in_millis(self):
        return 60_000
result = getattr(module, function_name)(json.loads(event), Context())
print("RESULT " + json.dumps({"python": list(sys.version_info[:2]), "result": result}, default=str))
"""


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def assemblies(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The dev stage synthesized for this host with each runtime (the session's assembly for dev's own).

    The synths run side by side: each keeps about one core busy (pip, the dependencies zip, the CDK app), so a
    runner's second core would otherwise sit idle while they run one after another.
    """
    outdirs = {runtime: tmp_path_factory.mktemp(f"cdk.out.{runtime}") for runtime in RUNTIMES if runtime != DEV_RUNTIME}
    with ThreadPoolExecutor(max_workers=len(outdirs)) as pool:
        synths = [pool.submit(emulator_synth, "dev", outdir, runtime=runtime) for runtime, outdir in outdirs.items()]
        # Asked for here, not as a parameter, so that it is built (if no module has yet) while the others are.
        dev_assembly: Path = request.getfixturevalue("emulator_assembly")
        for synth in synths:
            synth.result()
    return {DEV_RUNTIME: dev_assembly, **outdirs}


@pytest.fixture(scope="module")
def assembly(runtime: str, assemblies: dict[str, Path]) -> Path:
    return assemblies[runtime]


@pytest.fixture(scope="module")
def interpreter(runtime: str) -> Path:
    found = find_runtime_interpreter(python_version_of(runtime))
    if found is None:
        pytest.skip(
            f"no Python {python_version_of(runtime)} on this machine to run the {runtime} packages with; "
            "test_every_native_module_is_built_for_the_runtime checks what they hold"
        )
    return found


@pytest.fixture(scope="module")
def runtime_libs(tmp_path_factory: pytest.TempPathFactory, runtime: str, interpreter: Path) -> Path:
    """boto3 and SnapStart's hooks library as the Lambda runtime provides them, installed for the runtime's Python."""
    target = tmp_path_factory.mktemp("runtime")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
         "--python-version", python_version_of(runtime), "--only-binary=:all:", "boto3==1.44.8",
         "snapshot-restore-py==1.0.0"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    reset_moto(endpoint)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def stage(moto_endpoint: str, bundle: Bundle, assembly: Path) -> Iterator[dict[str, str]]:
    """moto holding what the template's resources would: bucket, live model, topic, state machine; the lake.

    Made afresh for each runtime. Returns the values of the template's Refs by logical id (and the pseudo parameters).
    """
    reset_moto(moto_endpoint)
    names = ResourceNames.of(load_settings("dev"), account=LOCAL_ACCOUNT, region=REGION)
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": REGION,
                           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():  # fmt: skip
            env.setenv(key, value)
        factory.reset_clients()
        factory.client("s3").create_bucket(Bucket=names.artifacts_bucket)
        factory.client("ssm").put_parameter(
            Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
        )
        registry = factory.registry(names.artifacts_bucket, names.live_pointer_parameter)
        registry.register(bundle.manifest, bundle.onnx_bytes)
        registry.promote(bundle.version, "package test")
        # The emulator stage trains from a declared lake (cdk.json's slipway:emulator `data`): the example data there.
        [lake] = load_settings("dev", emulator=True).data.locations()
        factory.client("s3").create_bucket(Bucket=lake.bucket)
        for day, start, stop in ((1, 0, 300), (2, 300, 569)):
            key, body = partition(lake.prefix, day, start, stop)
            factory.client("s3").put_object(Bucket=lake.bucket, Key=key, Body=body)
        topic = factory.client("sns").create_topic(Name=names.alarm_topic)["TopicArn"]
        machine = factory.client("stepfunctions").create_state_machine(
            name=names.retrain_state_machine,
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/package-test",
        )["stateMachineArn"]
        by_type = {"AWS::SNS::Topic": topic, "AWS::StepFunctions::StateMachine": machine}
        resources = template(assembly, STACK)["Resources"]
        yield {
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            **{key: by_type[r["Type"]] for key, r in resources.items() if r["Type"] in by_type},
            # An alarm's Ref is its name; none exists in moto, so the rollout's judge finds none firing.
            **{key: key for key, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"},
        }
    factory.reset_clients()


@pytest.fixture(scope="module")
def template_functions(assembly: Path) -> dict[str, Function]:
    return {function.handler: function for function in functions(assembly, STACK)}


def _package_name(function: Function) -> str:
    """'functions.inference.async_worker.lambda_handler' -> 'inference'; the retrain modules are two packages."""
    module = function.handler.rsplit(".", 1)[0]
    return {"functions.retrain.handler": "training", "functions.retrain.control": "control"}.get(
        module, module.split(".")[1]
    )


class PackageRun:
    """Runs the template's handlers, each from its package folder in an isolated interpreter."""

    def __init__(
        self, interpreter: Path, python: str, runtime: Path, endpoint: str, refs: dict[str, str], temp: Path
    ) -> None:
        self.interpreter, self.python, self.runtime = interpreter, python, runtime
        self.endpoint, self.refs = endpoint, refs
        self.temp = temp  # Lambda's /tmp: where a zipped package unpacks its dependencies

    def __call__(self, function: Function, event: dict[str, Any]) -> Any:
        environment = {name: resolve(value, self.refs) for name, value in function.environment.items()}
        env = {
            "PATH": os.environ["PATH"],
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "TMPDIR": str(self.temp),
            **environment,
        }
        result = subprocess.run(
            [str(self.interpreter), "-I", "-S", "-c", _RUNNER, str(function.package), str(self.runtime),
             function.handler, json.dumps(event, default=str)],
            env=env, cwd=self.runtime, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        lines = result.stdout.splitlines()
        for line in lines:
            if line.startswith("IMPORT "):
                missing = json.loads(line.removeprefix("IMPORT "))
                pytest.fail(
                    f"the {_package_name(function)} package lacks {missing['missing']!r}, imported by "
                    f"{missing['importer']} ({function.handler}): {missing['error']}"
                )
        assert result.returncode == 0, f"{function.handler} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        [line] = [line for line in lines if line.startswith("RESULT ")]
        outcome = json.loads(line.removeprefix("RESULT "))
        assert outcome["python"] == [int(part) for part in self.python.split(".")]
        return outcome["result"]


@pytest.fixture(scope="module")
def run(
    runtime: str,
    interpreter: Path,
    runtime_libs: Path,
    moto_endpoint: str,
    stage: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> PackageRun:
    python = python_version_of(runtime)
    return PackageRun(interpreter, python, runtime_libs, moto_endpoint, stage, tmp_path_factory.mktemp("lambda-tmp"))


def test_the_template_names_five_packages_and_every_handler_of_them(template_functions: dict[str, Function]) -> None:
    packages = {function.package for function in template_functions.values()}
    assert len(packages) == 5, sorted(str(p) for p in packages)
    assert set(template_functions) == {
        "functions.inference.handler.lambda_handler",
        "functions.inference.async_worker.lambda_handler",
        "functions.inference.async_fallback.lambda_handler",
        "functions.inference.batch_handler.plan_handler",
        "functions.inference.batch_handler.score_handler",
        "functions.monitor.handler.lambda_handler",
        "functions.retrain.handler.prepare_handler",
        "functions.retrain.handler.train_handler",
        "functions.retrain.handler.evaluate_handler",
        "functions.retrain.handler.register_handler",
        "functions.retrain.handler.promote_handler",
        "functions.retrain.control.drift_trigger_handler",
        "functions.retrain.control.rollback_handler",
        "functions.rollout.handler.start_handler",
        "functions.rollout.handler.judge_handler",
        "functions.rollout.handler.finish_handler",
        "functions.rollout.handler.launch_handler",
    }


def test_every_native_module_is_built_for_the_runtime(runtime: str, template_functions: dict[str, Function]) -> None:
    """pip was asked for the runtime's wheels (--python-version): every extension module must be one of them,
    in the package folder or in the dependencies zip a package unpacks at its cold start."""
    python = "cpython-" + python_version_of(runtime).replace(".", "")
    for package in {function.package for function in template_functions.values()}:
        names = [path.name for path in package.rglob("*.so")]
        for archive in package.glob("*.zip"):
            with zipfile.ZipFile(archive) as bundle:
                names += [PurePosixPath(member).name for member in bundle.namelist() if member.endswith(".so")]
        extensions = [name for name in names if ".cpython-" in name or ".abi3." in name]
        wrong = [name for name in extensions if f".{python}-" not in name and ".abi3." not in name]
        assert extensions and not wrong, f"{package.name}: {len(extensions)} extension modules, not {python}: {wrong}"


def test_inference_package_serves_health_and_answers_async_jobs(
    template_functions: dict[str, Function], run: PackageRun, bundle: Bundle, stage: dict[str, str]
) -> None:
    serving = template_functions["functions.inference.handler.lambda_handler"]
    response = run(serving, proxy_event(HttpRequest("GET", "/health")))
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "ready", response

    bucket = resolve(serving.environment["ARTIFACTS_BUCKET"], stage)
    jobs = S3JobStore(boto3.client("s3", endpoint_url=run.endpoint, region_name=REGION), bucket)
    row = {f.name: f.impute for f in bundle.manifest.feature_spec.features}
    for job_id, handler in ((new_job_id(), "async_worker"), (new_job_id(), "async_fallback")):
        jobs.put_request(JobRequest(job_id=job_id, instances=[row], submitted_at=datetime.now(UTC), validated_by=None))
        event = {"Records": [_sqs_record(JobMessage(job_id=job_id).model_dump_json())]}
        response = run(template_functions[f"functions.inference.{handler}.lambda_handler"], event)
        assert response == {"batchItemFailures": []}, (handler, response)
        result = jobs.get_result(job_id)
        assert result is not None and result.answered_by == ("worker" if handler == "async_worker" else
                                                               "dead_letter_fallback"), result  # fmt: skip

    s3 = boto3.client("s3", endpoint_url=run.endpoint, region_name=REGION)
    csv = ",".join(row) + "\n" + ",".join(map(str, row.values()))
    s3.put_object(Bucket=bucket, Key="batch/in/rows.csv", Body=csv)
    plan = run(
        template_functions["functions.inference.batch_handler.plan_handler"],
        {"input_prefix": "batch/in/", "output_prefix": "batch/out/", "run_id": "package-test"},
    )
    assert plan["count"] == 1, plan
    [item] = json.loads(s3.get_object(Bucket=bucket, Key=plan["manifest_key"])["Body"].read())
    scored = run(template_functions["functions.inference.batch_handler.score_handler"], item)
    assert scored["rows"] == 1 and scored["errors"] == 0, scored


def test_monitor_package_runs_a_window_and_takes_a_parquet_label_file(
    template_functions: dict[str, Function], run: PackageRun
) -> None:
    labels = load_settings("dev", emulator=True).data.labels_location()
    assert labels is not None
    sink = io.BytesIO()
    pq.write_table(pa.table({"key": ["1001", "1002"], "label": ["benign", "malignant"]}), sink)
    s3 = boto3.client("s3", endpoint_url=run.endpoint, region_name=REGION)
    s3.put_object(Bucket=labels.bucket, Key=f"{labels.prefix}dt=2026-12-06/part-0.parquet", Body=sink.getvalue())
    report = run(template_functions["functions.monitor.handler.lambda_handler"], {})
    # pyarrow, from the package on the runtime's Python, read the file into stored feedback.
    assert report["label_files"] == {"objects_read": 1, "labels": 2, "refused": []}, report


def test_training_package_runs_every_retrain_step(
    template_functions: dict[str, Function], run: PackageRun, bundle: Bundle
) -> None:
    step = "functions.retrain.handler.{}_handler".format
    data = run(template_functions[step("prepare")], {"run_id": "package-test", "reason": "package test"})
    assert (data["objects_read"], data["table_rows"]) == (2, 569), data
    candidate = run(template_functions[step("train")], {"data": data})
    decision = run(template_functions[step("evaluate")], {"data": data, "candidate": candidate})
    # Same data (read from the lake's Parquet) and seed: the package on the runtime's Python trains the very
    # bundle the project venv did from load_data().
    assert (decision["candidate_version"], decision["verdict"]) == (bundle.version, "unchanged"), decision
    version = {"version": decision["candidate_version"], "reason": "package test"}
    assert run(template_functions[step("register")], version)
    assert run(template_functions[step("promote")], version)


def test_control_package_starts_runs_and_watches_alarms(
    template_functions: dict[str, Function], run: PackageRun
) -> None:
    now = datetime.now(UTC).isoformat()
    detail = {"model_version": "v", "window_start": now, "window_end": now, "rows": 500, "drift_share": 0.5,
              "drifted_features": ["mean_radius"], "report_key": "reports/drift/x.json"}  # fmt: skip
    started = run(template_functions["functions.retrain.control.drift_trigger_handler"], {"detail": detail})
    assert started["started"] is True and started["execution_arn"], started
    outcome = run(
        template_functions["functions.retrain.control.rollback_handler"], {"detail": {"alarmName": "package-test"}}
    )
    assert set(outcome) == {"rolled_back", "live", "reason"}, outcome


def test_rollout_package_starts_judges_and_finishes_a_phase(
    template_functions: dict[str, Function], run: PackageRun, bundle: Bundle, stage: dict[str, str]
) -> None:
    step = "functions.rollout.handler.{}_handler".format
    environment = template_functions[step("start")].environment
    registry = Registry(
        S3ModelStore(boto3.client("s3", endpoint_url=run.endpoint, region_name=REGION),
                     resolve(environment["ARTIFACTS_BUCKET"], stage)),
        SsmPointerStore(boto3.client("ssm", endpoint_url=run.endpoint, region_name=REGION),
                        resolve(environment["LIVE_POINTER_PARAMETER"], stage)),
    )  # fmt: skip
    candidate = variant(bundle, 0.99, "malignant")
    registry.register(candidate, bundle.onnx_bytes)
    phase = {"candidate": candidate.version, "mode": "shadow"}
    started = run(template_functions[step("start")], {**phase, "percent": 100, "reason": "package test"})
    rollout = registry.live().rollout
    assert rollout is not None and rollout.candidate == candidate.version
    judge = {**phase, "started_at": started["started_at"], "settle_seconds": 0, "run_id": "package-test"}
    judged = run(template_functions[step("judge")], judge)
    assert judged["decision"] == "refuse" and "rows compared" in judged["reasons"][0], judged
    finish = {"candidate": candidate.version, "action": "refuse", "reason": "package test", "run_id": "package-test"}
    finished = run(template_functions[step("finish")], finish)
    assert finished["live"] == bundle.version and registry.live().rollout is None
    launched = run(template_functions[step("launch")], {"version": candidate.version, "reason": "package test"})
    assert launched["execution_arn"], launched


def _sqs_record(body: str) -> dict[str, Any]:
    return {
        "messageId": "m-1",
        "receiptHandle": "h-1",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{LOCAL_ACCOUNT}:requests",
        "awsRegion": REGION,
    }
