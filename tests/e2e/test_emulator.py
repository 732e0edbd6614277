"""The deployed dev stage, checked only through the emulator's APIs and the real CLI, in the order a user works.

Run alone with `make e2e`; `make test` runs it too. Each test is one check of the summary.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from functions.adapters.model_store import S3ModelStore
from functions.adapters.monitoring_store import S3LabelledRowSource, S3MonitoringStore
from functions.core import layout
from functions.core.capture import CAPTURE_MARKER
from functions.core.events import DRIFT_DETECTED, event_source
from functions.core.jobs import JobMessage, JobRequest, new_job_id
from functions.training.train import train_bundle
from slipway.local.recipes import variant
from slipway.smoke import emulator_url
from stage.settings import load_settings
from tests.assembly import emulator_synth, resolve
from tests.e2e.tier import ACCOUNT, DEPLOY_TIMEOUT_SECONDS, REGION, STACK, SUMMARY, Deployment
from tests.lake_data import partition

WAIT_SECONDS = 120
# The second front door the tier deploys (MiniStack serves HTTP APIs; it checks that an IAM route's request
# carries an Authorization header, not its signature).
HTTP_FRONT_DOOR = {"type": "http", "auth": "iam"}


def _wait(what: str, probe: Callable[[], Any], deployment: Deployment, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"{what}: nothing within {timeout:.0f} s; emulator log:\n{deployment.emulator.log_tail()}")


def _api(
    deployment: Deployment, method: str, path: str, body: Any = None, *, base: str | None = None, sign: bool = False
) -> tuple[int, Any]:
    """A call to the deployed API: with its API key, or at `base` (another front door) signed with SigV4 or not."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if base is None:
        base = emulator_url(deployment.outputs["EndpointUrl"], deployment.emulator.endpoint)
        key = deployment.client("apigateway").get_api_key(apiKey=deployment.outputs["ApiKeyId"], includeValue=True)
        headers["x-api-key"] = key["value"]
    url = base + path.lstrip("/")
    if sign:
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(Credentials("test", "test"), "execute-api", REGION).add_auth(signed)
        headers = dict(signed.headers)
    request = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_deploy_created_every_resource_of_the_template(
    deployment: Deployment, template_resources: dict[str, Any]
) -> None:
    cloudformation = deployment.client("cloudformation")
    created = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    complete = {r["LogicalResourceId"] for r in created if r["ResourceStatus"] == "CREATE_COMPLETE"}
    SUMMARY.resources = (len(complete & set(template_resources)), len(template_resources))
    assert complete >= set(template_resources), sorted(set(template_resources) - complete)


def test_train_promote_and_smoke_through_the_emulated_api(deployment: Deployment) -> None:
    trained = deployment.slipway("train", "--promote")
    assert "live: " in trained.stdout
    smoke = deployment.slipway("smoke")
    assert "smoke test passed" in smoke.stdout
    assert "ok   GET /health without credentials: 403" in smoke.stdout, smoke.stdout


def test_the_inference_version_is_restored_from_its_snapshot_and_serves_the_model_promoted_after_it(
    deployment: Deployment,
) -> None:
    """The version was published (and snapshotted) at deploy, before any model was live; its restored
    container re-reads the pointer and answers with the model promoted since."""
    function = deployment.client("lambda").get_function_configuration(
        FunctionName=f"{STACK}-inference", Qualifier="live"
    )
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}, function
    live = json.loads(deployment.client("ssm").get_parameter(Name=deployment.outputs["LivePointerParameter"])
                      ["Parameter"]["Value"])["version"]  # fmt: skip
    status, health = _api(deployment, "GET", "/health")
    assert (status, health["status"], health["model_version"]) == (200, "ready", live), health
    logs = deployment.client("logs")
    group = f"/aws/lambda/{STACK}-inference"
    restored = _wait(
        "the restore hook's log line",
        lambda: logs.filter_log_events(logGroupName=group, filterPattern='"restored from a snapshot"')["events"],
        deployment,
    )
    assert "new clients and random state" in restored[0]["message"], restored


def test_async_job_goes_through_the_queue_and_the_worker(deployment: Deployment) -> None:
    status, model = _api(deployment, "GET", "/model")
    assert status == 200, model
    row = {f["name"]: f["impute"] for f in model["feature_spec"]["features"]}
    status, accepted = _api(deployment, "POST", "/predict/async", {"instances": [row, row]})
    assert status == 202, accepted

    def done() -> Any:
        status, job = _api(deployment, "GET", f"/predict/async/{accepted['job_id']}")
        return job if status == 200 and job.get("status") == "done" else None

    job = _wait("the worker's answer to an async job", done, deployment)
    assert job["model_version"] == model["version"] and len(job["predictions"]) == 2, job


def test_poison_job_goes_through_the_dead_letters_to_the_fallback_once(deployment: Deployment) -> None:
    """A job the worker cannot score (rows the live spec refuses) is redriven, then answered by plan B, once."""
    bucket = deployment.outputs["ArtifactsBucketName"]
    s3, sqs = deployment.client("s3"), deployment.client("sqs")
    job_id = new_job_id()
    request = JobRequest(job_id=job_id, instances=[{"no_such_feature": 1}], submitted_at=datetime.now(UTC),
                         validated_by=None)  # fmt: skip
    s3.put_object(Bucket=bucket, Key=layout.async_request_key(job_id), Body=request.model_dump_json())
    queue = sqs.get_queue_url(QueueName=f"{STACK}-async-requests")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=JobMessage(job_id=job_id).model_dump_json())

    def answered() -> Any:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=layout.async_result_key(job_id))["Body"].read())
        except ClientError:
            return None

    result = _wait("the fallback's answer to a poison job", answered, deployment, timeout=180)
    assert (result["answered_by"], result["status"]) == ("dead_letter_fallback", "fallback"), result
    dead_letters = sqs.get_queue_url(QueueName=f"{STACK}-async-dead-letters")["QueueUrl"]
    for url in (queue, dead_letters):
        _wait(f"{url} drained", lambda url=url: _depth(sqs, url) == 0, deployment, timeout=60)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=layout.async_result_key(job_id)).get("Versions", [])
    assert len(versions) == 1, f"one answer per job, found {len(versions)}"


def test_a_message_that_names_no_job_is_kept_in_s3_and_leaves_the_dead_letters(deployment: Deployment) -> None:
    """The fallback's event source delivers a poison dead letter; its body lands under async/poison/, once."""
    bucket = deployment.outputs["ArtifactsBucketName"]
    s3, sqs = deployment.client("s3"), deployment.client("sqs")
    dead_letters = sqs.get_queue_url(QueueName=f"{STACK}-async-dead-letters")["QueueUrl"]
    body = "not a job message: " + new_job_id()
    message_id = sqs.send_message(QueueUrl=dead_letters, MessageBody=body)["MessageId"]

    def kept() -> Any:
        try:
            return s3.get_object(Bucket=bucket, Key=layout.async_poison_key(message_id))["Body"].read()
        except ClientError:
            return None

    assert _wait("the poison body under async/poison/", kept, deployment, timeout=120) == body.encode()
    _wait("the dead letters drained", lambda: _depth(sqs, dead_letters) == 0, deployment, timeout=60)


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_retrain_reads_only_the_new_partition_of_the_lake_and_its_candidate_lists_it(deployment: Deployment) -> None:
    """A day lands in the lake; `slipway retrain` runs the deployed state machine, whose Prepare reads only it."""
    [lake] = load_settings("dev", emulator=True).data.locations()
    key, body = partition(lake.prefix, 3, 500, 569)
    deployment.client("s3").put_object(Bucket=lake.bucket, Key=key, Body=body)

    result = deployment.slipway("retrain", "--reason", "emulator tier")

    assert "gate: " in result.stdout, result.stdout
    assert "data: 569 rows of 3 source object(s), 1 read this run, 0 dropped" in result.stdout, result.stdout
    [execution] = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("started ")]
    output = json.loads(deployment.client("stepfunctions").describe_execution(executionArn=execution)["output"])
    data = output["data"]
    assert (data["objects"], data["objects_read"], data["table_rows"]) == (3, 1, 569), data
    bucket = deployment.outputs["ArtifactsBucketName"]
    version = output["decision"]["candidate_version"]
    body = deployment.client("s3").get_object(Bucket=bucket, Key=f"{layout.candidate_prefix(version)}manifest.json")
    lineage = json.loads(body["Body"].read())["lineage"]["data"]
    etag = deployment.client("s3").head_object(Bucket=lake.bucket, Key=key)["ETag"].strip('"')
    assert {"uri": f"s3://{lake.bucket}/{key}", "etag": etag, "version_id": None, "rows": 69} in lineage["objects"]
    assert len(lineage["objects"]) == 3 and lineage["snapshot_hash"] == data["data_hash"]


def test_a_rollout_runs_the_deployed_state_machine_and_refuses_a_candidate_without_traffic(
    deployment: Deployment,
) -> None:
    """Firehose does not deliver here, so no shadowed row reaches capture/: the judge refuses for want of rows."""
    bucket = deployment.outputs["ArtifactsBucketName"]
    models = S3ModelStore(deployment.client("s3"), bucket)

    def live() -> dict[str, Any]:
        return dict(json.loads(deployment.slipway("models", "--json").stdout)["live"])

    before = live()
    candidate = train_bundle(variant(seed_offset=1))
    models.put_bundle(candidate.manifest, candidate.onnx_bytes)
    result = deployment.slipway(
        "rollout", candidate.version, "--bake-seconds", "2", "--settle-seconds", "0", check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shadow: refuse" in result.stdout and "rows compared, fewer than" in result.stdout, result.stdout
    assert "stays live" in result.stdout and "rollout: none" in result.stdout
    assert live() == before, "the live model is untouched"
    records = deployment.client("s3").list_objects_v2(Bucket=bucket, Prefix=layout.ROLLOUT_PREFIX)
    names = sorted(item["Key"].rsplit("/", 1)[1] for item in records.get("Contents", []))
    assert names == ["outcome.json", "shadow.json"], names


def test_drift_event_reaches_the_trigger_and_starts_a_run(deployment: Deployment) -> None:
    sfn = deployment.client("stepfunctions")
    machine = deployment.outputs["RetrainStateMachineArn"]
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    now = datetime.now(UTC).isoformat()
    detail = {"model_version": "emulator", "window_start": now, "window_end": now, "rows": 500, "drift_share": 0.5,
              "drifted_features": ["mean_radius"], "report_key": "reports/drift/emulator.json"}  # fmt: skip
    deployment.client("events").put_events(
        Entries=[{"Source": event_source("slipway", "dev"), "DetailType": DRIFT_DETECTED, "Detail": json.dumps(detail)}]
    )

    def started() -> Any:
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        return [e for e in executions if e["executionArn"] not in before]

    [execution] = _wait("a retrain run started by a DriftDetected event", started, deployment)
    assert "drift" in sfn.describe_execution(executionArn=execution["executionArn"])["input"]


def test_monitor_runs_over_captured_traffic_and_writes_its_report(deployment: Deployment) -> None:
    """Firehose does not deliver here: the inference function's capture lines are copied to capture/ as it would.

    One row is sent with its key (the stage's data.key) and its label lands later as a Parquet file under
    data.labels: the deployed monitor takes the file and joins the label to that captured row."""
    for _ in range(3):
        deployment.slipway("smoke")
    status, model = _api(deployment, "GET", "/model")
    row = {f["name"]: f["impute"] for f in model["feature_spec"]["features"]}
    source = load_settings("dev", emulator=True).data
    status, predicted = _api(deployment, "POST", "/predict", {"instances": [{**row, source.key: "emulator-1"}]})
    assert status == 200, predicted
    label = predicted["predictions"][0]["label"]
    labels = source.labels_location()
    assert labels is not None
    sink = io.BytesIO()
    pq.write_table(pa.table({"key": ["emulator-1"], "label": [label]}), sink)
    deployment.client("s3").put_object(Bucket=labels.bucket, Key=f"{labels.prefix}part-0.parquet", Body=sink.getvalue())
    logs = deployment.client("logs")
    group = f"/aws/lambda/{STACK}-inference"
    lines = [e["message"] for e in logs.filter_log_events(logGroupName=group, limit=10000)["events"]]
    capture = [line.strip() for line in lines if CAPTURE_MARKER in line and line.lstrip().startswith("{")]
    assert capture, f"no capture lines in {group}: {lines[:5]}"
    bucket = deployment.outputs["ArtifactsBucketName"]
    s3 = deployment.client("s3")
    # Dated an hour back: the scheduled monitor judges the last whole hour, which must hold them.
    hour = datetime.now(UTC) - timedelta(hours=1)
    records = [{**json.loads(line), "time": hour.isoformat()} for line in capture]
    key = f"{layout.CAPTURE_PREFIX}{hour:%Y/%m/%d/%H}/emulator-tier"
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join(json.dumps(record) for record in records).encode())
    answer = deployment.client("lambda").invoke(FunctionName=f"{STACK}-monitor", Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, payload
    assert payload["label_files"] == {"objects_read": 1, "labels": 1, "refused": []}, payload
    # The label landed this hour, after the window the monitor judged: the next cycle counts it. Its join with
    # the keyed row, as the next cycle and the next Prepare make it:
    [labelled] = [r for r in S3LabelledRowSource(S3MonitoringStore(s3, bucket)).labelled_rows() if r.key]
    assert (labelled.key, labelled.label) == ("emulator-1", label), labelled
    reports = s3.list_objects_v2(Bucket=bucket, Prefix=layout.REPORTS_PREFIX).get("Contents", [])
    assert reports, f"the monitor wrote no report: {payload}"
    # Each answer's outlier score travelled through the deployed function's capture to the report.
    assert all(record.get("outlier") for record in records), records[0]
    keys = sorted(
        r["Key"]
        for r in reports
        if r["Key"].endswith(".json")
        and not r["Key"].endswith("latest.json")
        and r["Key"] != layout.QUALITY_HISTORY_KEY
    )
    report = json.loads(s3.get_object(Bucket=bucket, Key=keys[-1])["Body"].read())["report"]
    # The report judges the live model's rows: the retrain above promoted the lake's new day.
    live = [record for record in records if record["model_version"] == report["model_version"]]
    assert live and report["outliers"]["scored"] == sum(record["rows"] for record in live), report["outliers"]


def test_batch_scoring_runs_the_deployed_state_machine(deployment: Deployment) -> None:
    bucket = deployment.outputs["ArtifactsBucketName"]
    _, model = _api(deployment, "GET", "/model")
    row = {f["name"]: f["impute"] for f in model["feature_spec"]["features"]}
    body = ",".join(row) + "\n" + ",".join(str(value) for value in row.values()) + "\n"
    deployment.client("s3").put_object(Bucket=bucket, Key="batch/in/rows.csv", Body=body.encode())
    result = deployment.slipway("score", "--input", "batch/in/", "--output", "batch/out/")
    assert "scored 1 new or changed object(s), 1 rows" in result.stdout, result.stdout
    scored = deployment.client("s3").get_object(Bucket=bucket, Key="batch/out/rows.csv.scored.csv")["Body"].read()
    assert len(scored.decode().strip().splitlines()) == 2, scored
    again = deployment.slipway("score", "--input", "batch/in/", "--output", "batch/out/")
    assert "scored 0 new or changed object(s)" in again.stdout, again.stdout


def test_the_stage_redeployed_behind_an_http_api_answers_the_same_signed_requests(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`api.type: http` as a stack update: an HTTP API replaces the REST API, and the same function answers its
    payload 2.0 events (what the function reads of them is its FRONT_DOOR, which the update changes too)."""
    # Synthesized beside the first assembly's packages (hard-linked: their source is the same, so CDK finds each
    # staged asset in place and bundles none again); the templates it rewrites are not linked.
    assembly = tmp_path_factory.mktemp("emulator-http")
    for staged in deployment.assembly.glob("asset.*"):
        shutil.copytree(staged, assembly / staged.name, copy_function=os.link)
    emulator_synth("dev", assembly, api=HTTP_FRONT_DOOR)
    deployment.cdk(
        "deploy", "--app", str(assembly), "--require-approval", "never", STACK, timeout=DEPLOY_TIMEOUT_SECONDS
    )
    [stack] = deployment.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
    assert "ApiKeyId" not in outputs and "execute-api" in outputs["EndpointUrl"], outputs
    base = emulator_url(outputs["EndpointUrl"], deployment.emulator.endpoint)
    _, model = _api(deployment, "GET", "/model", base=base, sign=True)
    row = {f["name"]: f["impute"] for f in model["feature_spec"]["features"]}
    status, answer = _api(deployment, "POST", "/predict", {"instances": [row]}, base=base, sign=True)
    assert status == 200 and answer["model_version"] == model["version"], answer
    v2 = f"/v2/models/{load_settings('dev', emulator=True).recipe.rsplit('.', 1)[-1]}/infer"
    body = {
        "inputs": [{"name": name, "datatype": "FP64", "shape": [1], "data": [value]} for name, value in row.items()]
    }
    status, inferred = _api(deployment, "POST", v2, body, base=base, sign=True)
    assert status == 200 and inferred["model_version"] == model["version"], inferred
    unsigned, _ = _api(deployment, "GET", "/health", base=base)
    assert unsigned in (401, 403), unsigned


def test_destroy_removes_the_stack(deployment: Deployment, template_resources: dict[str, Any]) -> None:
    # MiniStack's CloudFormation does not apply a bucket's Tags; CDK's auto-delete handler checks its
    # tag before emptying a bucket, so the tier applies the template's tags as AWS would have.
    s3 = deployment.client("s3")
    for resource in template_resources.values():
        tags = resource.get("Properties", {}).get("Tags")
        if resource["Type"] == "AWS::S3::Bucket" and tags:
            name = resolve(resource["Properties"]["BucketName"], {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION})
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    deployment.cdk("destroy", "--app", str(deployment.assembly), "--force", STACK, timeout=600)
    try:
        stacks = deployment.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    except ClientError:
        stacks = []
    assert all(stack["StackStatus"] == "DELETE_COMPLETE" for stack in stacks), stacks
