"""Least privilege proven both ways: each function's handler runs under the exact policy its role gets.

Every Python function of the synthesized dev template (with a declared S3 lake as its training
data, `data.kind: "s3"`, so that the grants made from that declaration are proven too) gets, in moto, a role holding
exactly the policy documents the template attaches to its role (tokens resolved to
moto's names) and runs its handler in-process with that role's credentials while moto
enforces IAM. Every boto3 call the handler makes is recorded and checked twice: moto
must not have refused it, and a small evaluator (tests/infra/iam_evaluation.py) must
find it allowed by the template's statements. Then calls each role must not make are
made with its credentials and must be refused.

What moto enforces (5.2): S3 (object and bucket ARNs) and SQS (queue ARN) natively;
SSM, SNS, Step Functions and EventBridge against the parameter, topic, state machine or
bus ARN once `role_harness.moto_names_resources` names it (moto otherwise checks them
against Resource "*"). moto ignores condition operators other than StringEquals, so the
`s3:prefix` conditions of the listing grants are checked by the evaluator only. It also
always answers 404 for a missing key a role may read, where S3 answers 403 unless the
role may list the bucket: the evaluator asks for that listing grant. What the Lambda
service does with the role (write logs, send traces, poll the event source queue, send
to the failure destination) and the KMS use behind publishing to an encrypted topic
happen outside the code, so the evaluator checks them against the template alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from iam_evaluation import Call, Request, allows, matches, requests_of, statements
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication
from role_harness import (
    CallRecorder,
    LambdaFunction,
    TemplateNames,
    encrypted_topics,
    lambda_functions,
    moto_names_resources,
    provision,
    role_credentials,
)
from synth_support import LAKE_BUCKET

from functions.adapters import factory
from functions.adapters.job_store import S3JobStore
from functions.core.events import event_source
from functions.core.feedback import FeedbackItem
from functions.core.jobs import JobMessage, JobRequest, new_job_id
from functions.monitor.service import window_of
from functions.retrain import config as retrain_config
from functions.retrain import handler as retrain_handler
from functions.training.train import Bundle, load_recipe, load_table
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, proxy_event
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import load_settings
from tests.capture_lines import capture_lines
from tests.lake_data import partition

REGION = "us-east-1"
ADMIN = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}

INFERENCE = "functions.inference.handler.lambda_handler"
WORKER = "functions.inference.async_worker.lambda_handler"
FALLBACK = "functions.inference.async_fallback.lambda_handler"
PLAN = "functions.inference.batch_handler.plan_handler"
SCORE = "functions.inference.batch_handler.score_handler"
MONITOR = "functions.monitor.handler.lambda_handler"
PREPARE, TRAIN, EVALUATE, REGISTER, PROMOTE = (
    f"functions.retrain.handler.{step}_handler" for step in ("prepare", "train", "evaluate", "register", "promote")
)
TRIGGER = "functions.retrain.control.drift_trigger_handler"
ROLLBACK = "functions.retrain.control.rollback_handler"
START, JUDGE, FINISH, LAUNCH = (
    f"functions.rollout.handler.{step}_handler" for step in ("start", "judge", "finish", "launch")
)

# Companions CDK's own grants add to an action that is needed (in the same statement, on the same
# resource); neither this code nor Lambda calls them.
CDK_COMPANIONS = {
    "sqs:ChangeMessageVisibility": "SqsEventSource grants it with the polling actions",
    "sqs:GetQueueUrl": "SqsEventSource and SqsDestination grant it with the queue's other actions",
    "sqs:GetQueueAttributes": "SqsDestination grants it with sqs:SendMessage",
}


@dataclass
class Stage:
    """moto holding the dev template's resources, each function's role, and what the steps hand on."""

    functions: dict[str, LambdaFunction]
    names: ResourceNames
    bundle: Bundle
    credentials: dict[str, dict[str, str]]
    recorder: CallRecorder
    topic_keys: dict[str, str]
    handed_on: dict[str, Any] = field(default_factory=dict)
    label: str = "seed"  # the step whose calls are being recorded

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        """Run `handler` as a cold container of its function: its environment, its role, IAM enforced."""
        function = self.functions[handler]
        module_name, function_name = handler.rsplit(".", 1)
        with pytest.MonkeyPatch.context() as env:
            for name, value in {**function.environment, **self.credentials[handler],
                                "AWS_LAMBDA_FUNCTION_NAME": function.name}.items():  # fmt: skip
                env.setenv(name, value)
            _new_container()
            context = FakeLambdaContext(function_name=function.name, log_group_name=f"/aws/lambda/{function.name}")
            try:
                with self.recorder.recording(self.label), enable_iam_authentication():
                    return getattr(cold_start(module_name), function_name)(event, context)
            finally:
                _new_container()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        event = proxy_event(HttpRequest(method, path, body=None if body is None else json.dumps(body)))
        response = self.invoke(INFERENCE, event)
        return response["statusCode"], json.loads(response["body"])

    def needs(self, call: Call) -> list[Request]:
        """The IAM requests of a call, with the KMS use behind publishing to an encrypted topic."""
        found = requests_of(call, account=LOCAL_ACCOUNT)
        if (call.service, call.operation) == ("sns", "Publish") and call.params["TopicArn"] in self.topic_keys:
            key = self.topic_keys[call.params["TopicArn"]]
            found += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
        return found

    def as_role(self, handler: str, service: str) -> Any:
        keys = self.credentials[handler]
        return boto3.client(
            service, region_name=REGION, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"], aws_session_token=keys["AWS_SESSION_TOKEN"],
        )  # fmt: skip


def _new_container() -> None:
    """Forget the session, clients and configuration a previous container built (a new process on Lambda)."""
    boto3.setup_default_session()
    factory.reset_clients()
    retrain_config.config.cache_clear()
    retrain_handler.reset()


# -- the normal paths, in the order the system runs them ---------------------------------


@dataclass(frozen=True)
class Step:
    handler: str
    name: str
    run: Callable[[Stage], None]

    @property
    def label(self) -> str:
        return f"{self.handler.removeprefix('functions.')}: {self.name}"


STEPS: list[Step] = []


def step(handler: str, name: str) -> Callable[[Callable[[Stage], None]], Callable[[Stage], None]]:
    def register(run: Callable[[Stage], None]) -> Callable[[Stage], None]:
        STEPS.append(Step(handler, name, run))
        return run

    return register


def _row(index: int = 0) -> dict[str, float]:
    """Row `index` of the example data, as a client sends it."""
    columns, _ = load_table(load_recipe())
    return {name: float(values[index]) for name, values in columns.items()}


@step(INFERENCE, "GET /health")
def _health(stage: Stage) -> None:
    status, body = stage.api("GET", "/health")
    assert (status, body["status"], body["model_version"]) == (200, "ready", stage.bundle.version), body


@step(INFERENCE, "GET /model")
def _model(stage: Stage) -> None:
    status, body = stage.api("GET", "/model")
    assert (status, body["version"]) == (200, stage.bundle.version), body


@step(INFERENCE, "POST /predict")
def _predict(stage: Stage) -> None:
    status, body = stage.api("POST", "/predict", {"instances": [_row(0), _row(1)]})
    assert (status, body["model_version"], len(body["predictions"])) == (200, stage.bundle.version, 2), body


@step(INFERENCE, "POST /predict/async")
def _submit(stage: Stage) -> None:
    status, body = stage.api("POST", "/predict/async", {"instances": [_row()]})
    assert status == 202, body
    stage.handed_on["job"] = body["job_id"]


@step(INFERENCE, "GET /predict/async/<job>")
def _poll(stage: Stage) -> None:
    status, body = stage.api("GET", f"/predict/async/{stage.handed_on['job']}")
    assert (status, body["status"]) == (200, "pending"), body


@step(INFERENCE, "GET /predict/async/<unknown job>")
def _poll_unknown(stage: Stage) -> None:
    status, body = stage.api("GET", f"/predict/async/{new_job_id()}")
    assert status == 404, body


@step(INFERENCE, "POST /feedback")
def _feedback(stage: Stage) -> None:
    items = [{"request_id": "req-now-0", "row": row, "label": "benign"} for row in range(5)]
    status, body = stage.api("POST", "/feedback", {"items": items})
    assert (status, body) == (202, {"accepted": 5, "duplicates": []}), body


@step(WORKER, "a queued job")
def _worker(stage: Stage) -> None:
    event = {"Records": [_sqs_record(stage.handed_on["job"], stage.names.requests_queue)]}
    assert stage.invoke(WORKER, event) == {"batchItemFailures": []}
    result = _jobs(stage).get_result(stage.handed_on["job"])
    assert result is not None and result.answered_by == "worker", result


@step(WORKER, "a redelivered job")
def _worker_again(stage: Stage) -> None:
    event = {"Records": [_sqs_record(stage.handed_on["job"], stage.names.requests_queue)]}
    assert stage.invoke(WORKER, event) == {"batchItemFailures": []}


@step(FALLBACK, "a dead-lettered job")
def _fallback(stage: Stage) -> None:
    job_id = new_job_id()
    submitted = datetime.now(UTC)
    request = JobRequest(job_id=job_id, instances=[_row()], submitted_at=submitted, validated_by=None)
    _jobs(stage).put_request(request)
    event = {"Records": [_sqs_record(job_id, stage.names.dead_letter_queue)]}
    assert stage.invoke(FALLBACK, event) == {"batchItemFailures": []}
    result = _jobs(stage).get_result(job_id)
    assert result is not None and result.answered_by == "dead_letter_fallback", result


@step(FALLBACK, "a poison dead letter")
def _fallback_poison(stage: Stage) -> None:
    event = {"Records": [{**_sqs_record(new_job_id(), stage.names.dead_letter_queue), "body": "not a job message"}]}
    assert stage.invoke(FALLBACK, event) == {"batchItemFailures": []}


@step(PLAN, "plan the delta")
def _plan(stage: Stage) -> None:
    row = _row()
    s3 = boto3.client("s3", **ADMIN)
    s3.put_object(Bucket=stage.names.artifacts_bucket, Key="batch/in/rows.csv",
                  Body=",".join(row) + "\n" + ",".join(map(str, row.values())))  # fmt: skip
    event = {"input_prefix": "batch/in/", "output_prefix": "batch/out/", "run_id": "least-privilege"}
    plan = stage.invoke(PLAN, event)
    assert plan["count"] == 1, plan
    [stage.handed_on["batch_item"]] = json.loads(
        s3.get_object(Bucket=stage.names.artifacts_bucket, Key=plan["manifest_key"])["Body"].read()
    )


@step(SCORE, "score one object")
def _score(stage: Stage) -> None:
    scored = stage.invoke(SCORE, stage.handed_on["batch_item"])
    assert (scored["rows"], scored["errors"]) == (1, 0), scored


@step(MONITOR, "a drifted window")
def _monitor(stage: Stage) -> None:
    summary = stage.invoke(MONITOR, {})
    assert summary["verdict"] == "drift" and summary["event_id"], summary
    assert summary["label_files"] == {"objects_read": 1, "labels": 1, "refused": []}, summary
    stage.handed_on["drift"] = summary


@step(TRIGGER, "drift, first run")
def _trigger(stage: Stage) -> None:
    outcome = stage.invoke(TRIGGER, _drift_event(stage))
    assert outcome["started"] is True and outcome["execution_arn"], outcome


@step(TRIGGER, "drift within the cool-down")
def _trigger_again(stage: Stage) -> None:
    outcome = stage.invoke(TRIGGER, _drift_event(stage))
    assert outcome["started"] is False, outcome


@step(PREPARE, "the declared lake plus feedback")
def _prepare(stage: Stage) -> None:
    data = stage.invoke(PREPARE, {"run_id": "least-privilege", "reason": "test"})
    assert data["labelled_rows"] > 0 and data["objects_read"] == 2 and data["table_rows"] == 569, data
    stage.handed_on["data"] = data


@step(TRAIN, "a new candidate")
def _train(stage: Stage) -> None:
    candidate = stage.invoke(TRAIN, {"data": stage.handed_on["data"]})
    assert candidate["version"] != stage.bundle.version, "the labelled rows should make a new version"
    stage.handed_on["candidate"] = candidate


@step(EVALUATE, "candidate against live")
def _evaluate(stage: Stage) -> None:
    event = {"data": stage.handed_on["data"], "candidate": stage.handed_on["candidate"]}
    decision = stage.invoke(EVALUATE, event)
    assert decision["live_version"] == stage.bundle.version and decision["decision_key"], decision


@step(REGISTER, "a new version")
def _register(stage: Stage) -> None:
    event = {"version": stage.handed_on["candidate"]["version"], "reason": "test"}
    assert stage.invoke(REGISTER, event)["created"] is True


@step(PROMOTE, "move the live pointer")
def _promote(stage: Stage) -> None:
    version = stage.handed_on["candidate"]["version"]
    promoted = stage.invoke(PROMOTE, {"version": version, "reason": "test"})
    assert (promoted["live"], promoted["previous"]) == (version, stage.bundle.version), promoted


@step(ROLLBACK, "an alarm soon after a promotion")
def _rollback(stage: Stage) -> None:
    outcome = stage.invoke(ROLLBACK, {"detail": {"alarmName": "fallback-rate"}})
    assert (outcome["rolled_back"], outcome["live"]) == (True, stage.bundle.version), outcome


@step(ROLLBACK, "an alarm with nothing to undo")
def _rollback_nothing(stage: Stage) -> None:
    outcome = stage.invoke(ROLLBACK, {"detail": {"alarmName": "fallback-rate"}})
    assert outcome["rolled_back"] is False, outcome


@step(LAUNCH, "start the candidate's rollout")
def _launch(stage: Stage) -> None:
    started = stage.invoke(LAUNCH, {"version": stage.handed_on["candidate"]["version"], "reason": "test"})
    assert started["execution_arn"], started


@step(START, "put the candidate in shadow")
def _start(stage: Stage) -> None:
    event = {"candidate": stage.handed_on["candidate"]["version"], "mode": "shadow", "percent": 100, "reason": "t"}
    stage.handed_on["started"] = stage.invoke(START, event)


@step(JUDGE, "the shadow phase's figures")
def _judge(stage: Stage) -> None:
    event = {"candidate": stage.handed_on["candidate"]["version"], "mode": "shadow",
             "started_at": stage.handed_on["started"]["started_at"], "settle_seconds": 0,
             "run_id": "least-privilege"}  # fmt: skip
    decision = stage.invoke(JUDGE, event)
    assert decision["decision"] == "refuse" and decision["record_key"], decision  # no shadowed rows here


@step(FINISH, "refuse: end the rollout")
def _finish(stage: Stage) -> None:
    event = {"candidate": stage.handed_on["candidate"]["version"], "action": "refuse", "reason": "t",
             "run_id": "least-privilege"}  # fmt: skip
    assert stage.invoke(FINISH, event)["live"] == stage.bundle.version


@step(FINISH, "promote: the candidate goes live")
def _finish_promote(stage: Stage) -> None:
    version = stage.handed_on["candidate"]["version"]
    event = {"candidate": version, "action": "promote", "reason": "t", "run_id": "least-privilege"}
    assert stage.invoke(FINISH, event)["live"] == version


def _jobs(stage: Stage) -> S3JobStore:
    return S3JobStore(boto3.client("s3", **ADMIN), stage.names.artifacts_bucket)


def _sqs_record(job_id: str, queue: str) -> dict[str, Any]:
    return {"messageId": f"m-{job_id}", "receiptHandle": "h", "body": JobMessage(job_id=job_id).model_dump_json(),
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:{REGION}:{LOCAL_ACCOUNT}:{queue}",
            "awsRegion": REGION}  # fmt: skip


def _drift_event(stage: Stage) -> dict[str, Any]:
    summary = stage.handed_on["drift"]
    end = datetime.now(UTC)
    detail = {"model_version": stage.bundle.version, "window_start": (end - timedelta(hours=1)).isoformat(),
              "window_end": end.isoformat(), "rows": summary["rows"], "drift_share": summary["drift_share"],
              "drifted_features": summary["drifted_features"], "report_key": summary["report"]}  # fmt: skip
    return {"detail-type": "DriftDetected", "detail": detail}


def _seed(stage: Stage) -> None:
    """What a deployed stage holds before these paths run: a live model, base data, a window of capture."""
    registry = factory.registry(stage.names.artifacts_bucket, stage.names.live_pointer_parameter)
    registry.register(stage.bundle.manifest, stage.bundle.onnx_bytes)
    registry.promote(stage.bundle.version, "seed")
    s3 = factory.client("s3")
    s3.create_bucket(Bucket=LAKE_BUCKET)
    for day, start, stop in ((1, 0, 300), (2, 300, 569)):
        key, body = partition("sales/", day, start, stop)
        s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=LAKE_BUCKET, Key="labels/dt=2026-12-06/part-0.csv", Body=b"key,label\n1001,malignant\n")
    columns, target = load_table(load_recipe())
    shift = {"mean_radius": 0.5, "worst_texture": 0.6, "mean_smoothness": 0.4}
    store = factory.monitoring_store(stage.names.artifacts_bucket)
    rng = np.random.default_rng(0)
    start, end = window_of(datetime.now(UTC), 1)
    # The monitor's window and the current hour (which is the window if the hour turns meanwhile).
    for label, hour in (("last", start), ("now", end)):
        lines = []
        for request in range(30):
            picks = rng.integers(0, len(target), 10)
            features = [{n: float(v[i]) * (1 + shift.get(n, 0.0)) for n, v in columns.items()} for i in picks]
            at = (hour + timedelta(seconds=request)).isoformat()
            lines += capture_lines(request_id=f"req-{label}-{request}", time=at, model_version=stage.bundle.version,
                                   features=features)  # fmt: skip
        store.put_capture(hour, f"part-{label}", lines)
    store.put_feedback([FeedbackItem(request_id="req-last-1", row=row, label="malignant") for row in range(10)],
                       start + timedelta(minutes=5))  # fmt: skip
    factory.reset_clients()


# -- calls each role must not make ------------------------------------------------------


@dataclass(frozen=True)
class Forbidden:
    why: str
    service: str
    operation: str
    params: Callable[[ResourceNames, Bundle], dict[str, Any]]


def _s3(why: str, operation: str, key: str, bucket: Callable[[ResourceNames], str] | None = None) -> Forbidden:
    def params(names: ResourceNames, bundle: Bundle) -> dict[str, Any]:
        where = {"Bucket": (bucket or (lambda n: n.artifacts_bucket))(names)}
        real_key = key.format(live=bundle.version)
        if operation == "list_objects_v2":
            return {**where, "Prefix": real_key}
        return {**where, "Key": real_key, **({"Body": b"x"} if operation == "put_object" else {})}

    return Forbidden(why, "s3", operation, params)


def _pointer(why: str, operation: str) -> Forbidden:
    def params(names: ResourceNames, bundle: Bundle) -> dict[str, Any]:
        write = {"Value": '{"version": null}', "Type": "String", "Overwrite": True}
        return {"Name": names.live_pointer_parameter, **(write if operation == "put_parameter" else {})}

    return Forbidden(why, "ssm", operation, params)


def _prod_bucket(names: ResourceNames) -> str:
    return names.artifacts_bucket.replace(f"-{names.stage}-", "-prod-" if names.stage != "prod" else "-dev-")


EVERY_ROLE = [
    _s3("delete a bundle", "delete_object", "models/{live}/model.onnx"),
    _s3("read another stage's bucket", "get_object", "models/{live}/manifest.json", _prod_bucket),
    _s3("read the access logs", "list_objects_v2", "", lambda n: n.access_logs_bucket),
    _pointer("delete the live pointer", "delete_parameter"),
]
WRITE_POINTER = _pointer("move the live pointer", "put_parameter")
WRITE_BUNDLE = _s3("overwrite a bundle", "put_object", "models/{live}/model.onnx")
READ_BUNDLE = _s3("read a bundle", "get_object", "models/{live}/model.onnx")
START_RETRAIN = Forbidden(
    "start a retrain", "stepfunctions", "start_execution",
    lambda n, _: {"stateMachineArn": f"arn:aws:states:{REGION}:{n.account}:stateMachine:{n.retrain_state_machine}"},
)  # fmt: skip
NOTIFY = Forbidden(
    "publish to the alarm topic", "sns", "publish",
    lambda n, _: {"TopicArn": f"arn:aws:sns:{REGION}:{n.account}:{n.alarm_topic}", "Message": "x"},
)  # fmt: skip
FORBIDDEN: dict[str, list[Forbidden]] = {
    INFERENCE: [WRITE_POINTER, WRITE_BUNDLE, NOTIFY, START_RETRAIN,
                _s3("read the training table", "get_object", "data/table/ledger.json"),
                # /feedback stores labels and reads nothing: the monitor joins them to the capture.
                _s3("read the capture", "get_object", "capture/x.jsonl"),
                _s3("list the capture", "list_objects_v2", "capture/"),
                _s3("overwrite a job result", "put_object", "async/results/job-x.json"),
                _s3("list the bundles", "list_objects_v2", "models/"),
                Forbidden("send to the dead-letter queue", "sqs", "send_message",
                          lambda n, _: {"QueueUrl": n.queue_url(n.dead_letter_queue), "MessageBody": "x"})],
    WORKER: [WRITE_POINTER, WRITE_BUNDLE, _s3("rewrite a job request", "put_object", "async/requests/job-x.json"),
             _s3("read the capture", "get_object", "capture/x.jsonl")],
    FALLBACK: [WRITE_POINTER, READ_BUNDLE, _s3("list the capture", "list_objects_v2", "capture/"),
               _s3("overwrite a job request", "put_object", "async/requests/job-x.json")],
    PLAN: [WRITE_POINTER, READ_BUNDLE, _s3("write batch output", "put_object", "batch/out/x.csv")],
    SCORE: [WRITE_POINTER, WRITE_BUNDLE, _s3("list the bucket", "list_objects_v2", "batch/")],
    MONITOR: [WRITE_POINTER, WRITE_BUNDLE, START_RETRAIN, _s3("rewrite the capture", "put_object", "capture/x.jsonl"),
              _s3("list the bundles", "list_objects_v2", "models/"),
              _s3("read the lake's training data", "get_object", "sales/x.parquet", lambda _: LAKE_BUCKET),
              _s3("list the lake beyond the labels", "list_objects_v2", "sales/", lambda _: LAKE_BUCKET),
              _s3("write a label file", "put_object", "labels/x.csv", lambda _: LAKE_BUCKET),
              Forbidden("put another stage's DriftDetected", "events", "put_events",
                        lambda n, _: {"Entries": [{"Source": "slipway.prod", "DetailType": "DriftDetected",
                                                   "Detail": "{}"}]}),
              Forbidden("put another kind of event", "events", "put_events",
                        lambda n, _: {"Entries": [{"Source": "slipway.dev", "DetailType": "RetrainRequested",
                                                   "Detail": "{}"}]}),
              Forbidden("put events on another bus", "events", "put_events",
                        lambda n, _: {"Entries": [{"Source": "x", "DetailType": "x", "Detail": "{}",
                                                   "EventBusName": "other"}]})],
    PREPARE: [WRITE_POINTER, READ_BUNDLE, WRITE_BUNDLE, _pointer("read the live pointer", "get_parameter"),
              _s3("read the lake beyond the declared prefix", "get_object", "private/x.parquet", lambda _: LAKE_BUCKET),
              _s3("list the lake beyond the declared prefix", "list_objects_v2", "private/", lambda _: LAKE_BUCKET),
              _s3("write to the lake", "put_object", "sales/x.parquet", lambda _: LAKE_BUCKET)],
    TRAIN: [WRITE_POINTER, WRITE_BUNDLE, READ_BUNDLE, _s3("read the capture", "get_object", "capture/x.jsonl")],
    EVALUATE: [WRITE_POINTER, WRITE_BUNDLE, _s3("rewrite a run table", "put_object", "retrain/runs/x.jsonl")],
    REGISTER: [WRITE_POINTER, _s3("read the feedback", "get_object", "feedback/x.jsonl")],
    PROMOTE: [WRITE_BUNDLE, NOTIFY, _s3("rewrite a decision", "put_object", "retrain/decisions/x.json")],
    TRIGGER: [WRITE_POINTER, WRITE_BUNDLE, READ_BUNDLE,
              Forbidden("start the batch state machine", "stepfunctions", "start_execution",
                        lambda n, _: {"stateMachineArn":
                                      f"arn:aws:states:{REGION}:{n.account}:stateMachine:{n.batch_state_machine}"})],
    ROLLBACK: [WRITE_BUNDLE, START_RETRAIN, _s3("read the capture", "get_object", "capture/x.jsonl")],
    LAUNCH: [WRITE_POINTER, START_RETRAIN, READ_BUNDLE],
    START: [WRITE_BUNDLE, NOTIFY, _s3("read the capture", "get_object", "capture/x.jsonl")],
    JUDGE: [WRITE_POINTER, WRITE_BUNDLE, START_RETRAIN, _s3("rewrite the capture", "put_object", "capture/x.jsonl")],
    FINISH: [WRITE_BUNDLE, START_RETRAIN, _s3("read the feedback", "get_object", "feedback/x.jsonl")],
}  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    """What became of one forbidden call: moto's answer and the evaluator's."""

    forbidden: Forbidden
    call: Call
    requests: list[Request]
    documents: list[dict[str, Any]]


def _attempt(stage: Stage, handler: str, forbidden: Forbidden) -> Refusal:
    params = forbidden.params(stage.names, stage.bundle)
    label = f"forbidden {handler} {forbidden.why}"
    # The refusal is judged from the recorded call, whatever the error.
    with stage.recorder.recording(label), enable_iam_authentication(), suppress(ClientError):
        getattr(stage.as_role(handler, forbidden.service), forbidden.operation)(**params)
    [call] = stage.recorder.calls[label]
    function = stage.functions[handler]
    return Refusal(forbidden, call, requests_of(call, account=LOCAL_ACCOUNT), function.documents)


# -- fixtures and tests -------------------------------------------------------------------


@dataclass
class Outcome:
    stage: Stage
    failures: dict[Step, str]
    refusals: dict[str, list[Refusal]]


@pytest.fixture(scope="module")
def outcome(templates: dict[str, Template], names: ResourceNames, bundle: Bundle) -> Iterator[Outcome]:
    template = templates["dev-lake"].to_json()
    recorder = CallRecorder()
    with pytest.MonkeyPatch.context() as env, mock_aws(), moto_names_resources(), recorder.installed():
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(key, raising=False)
        for key, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "1"}.items():  # fmt: skip
            env.setenv(key, value)
        _new_container()
        template_names = provision(template, account=LOCAL_ACCOUNT, region=REGION)
        functions = lambda_functions(template, template_names)
        credentials = {h: role_credentials(f, account=LOCAL_ACCOUNT, region=REGION) for h, f in functions.items()}
        stage = Stage(functions, names, bundle, credentials, recorder, encrypted_topics(template, template_names))
        _seed(stage)
        failures = {}
        for current in STEPS:
            stage.label = current.label
            try:
                current.run(stage)
            except Exception as exc:  # reported by the step's own test, with what moto refused
                failures[current] = f"{type(exc).__name__}: {exc}"
        refusals = {h: [_attempt(stage, h, f) for f in [*EVERY_ROLE, *FORBIDDEN.get(h, [])]] for h in functions}
        yield Outcome(stage, failures, refusals)
    _new_container()
    boto3.DEFAULT_SESSION = None


def test_every_function_of_the_template_has_its_paths_and_refusals(outcome: Outcome) -> None:
    handlers = set(outcome.stage.functions)
    untested = sorted(handlers - {s.handler for s in STEPS})
    assert not untested, f"functions whose normal paths no step runs: {untested}; add a @step for each"
    unrefused = sorted(h for h in handlers if not FORBIDDEN.get(h))
    assert not unrefused, f"functions with no role-specific forbidden call: {unrefused}; add them to FORBIDDEN"
    assert not {s.handler for s in STEPS} - handlers, "steps for functions the template no longer has"


@pytest.mark.parametrize("current", STEPS, ids=lambda s: s.label)
def test_normal_paths_are_allowed(outcome: Outcome, current: Step) -> None:
    stage = outcome.stage
    calls = stage.recorder.calls.get(current.label, [])
    denied = [str(call) for call in calls if call.denied]
    assert not denied, f"moto refused calls of {current.handler} under its role's policy:\n" + "\n".join(denied)
    assert current not in outcome.failures, outcome.failures.get(current)
    assert calls, "a step that calls nothing proves nothing"
    documents = stage.functions[current.handler].documents
    refused = [f"{call}: {request}" for call in calls for request in stage.needs(call)
               if not allows(documents, request)]  # fmt: skip
    assert not refused, f"{current.handler} needs what its role does not grant:\n" + "\n".join(refused)


@pytest.mark.parametrize("handler", sorted(FORBIDDEN), ids=lambda h: h.removeprefix("functions."))
def test_what_lambda_does_with_the_role_is_granted(outcome: Outcome, handler: str) -> None:
    function = outcome.stage.functions[handler]
    missing = [str(request) for request in function.platform if not allows(function.documents, request)]
    assert not missing, f"{function.name}: Lambda cannot act for it:\n" + "\n".join(missing)


@pytest.mark.parametrize("handler", sorted(FORBIDDEN), ids=lambda h: h.removeprefix("functions."))
def test_forbidden_calls_are_refused(outcome: Outcome, handler: str) -> None:
    problems = []
    for refusal in outcome.refusals[handler]:
        refused = not all(allows(refusal.documents, r) for r in refusal.requests)
        # moto ignores StringLike conditions: a call refused only by a condition gets through moto.
        moto_can_refuse = not all(allows(refusal.documents, r, conditions=False) for r in refusal.requests)
        if not refused:
            problems.append(f"the policy allows it: {refusal.forbidden.why} ({refusal.call})")
        if moto_can_refuse and not refusal.call.denied:
            problems.append(f"moto let it through: {refusal.forbidden.why} ({refusal.call})")
    assert not problems, f"{handler}:\n" + "\n".join(problems)


@pytest.mark.parametrize("handler", sorted(FORBIDDEN), ids=lambda h: h.removeprefix("functions."))
def test_every_grant_is_used(outcome: Outcome, handler: str) -> None:
    """Each action on each resource a statement grants is needed by a call or by Lambda: nothing to spare."""
    stage = outcome.stage
    function = stage.functions[handler]
    needed = [
        request
        for current in STEPS
        if current.handler == handler
        for call in stage.recorder.calls.get(current.label, [])
        for request in stage.needs(call)
    ]
    needed += function.platform
    unused = []
    for statement in statements(function.documents):
        for resource in statement["Resource"]:
            used = {
                action
                for action in statement["Action"]
                if any(matches({**statement, "Action": [action], "Resource": [resource]}, r) for r in needed)
            }
            unused += [
                f"{statement.get('Sid', '(no Sid)')}: {action} on {resource}"
                for action in statement["Action"]
                if action not in used and not (used and action in CDK_COMPANIONS)
            ]
    assert not unused, f"{function.name} is granted what no normal path uses:\n" + "\n".join(unused)


def test_prod_roles_are_the_dev_roles_renamed(templates: dict[str, Template]) -> None:
    """What the paths above prove for dev holds for prod while each role's policy is the same but for names."""
    documents = {}
    for stage in ("dev", "prod"):
        template = templates[stage].to_json()
        keys = {key: "key-id" for key, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key"}
        found = lambda_functions(template, TemplateNames(template, account=LOCAL_ACCOUNT, region=REGION, known=keys))
        names = ResourceNames.of(load_settings(stage), account=LOCAL_ACCOUNT, region=REGION)
        text = json.dumps({h: f.documents for h, f in found.items()}, sort_keys=True)
        pointer_folder = names.live_pointer_parameter.rsplit("/", 1)[0]
        source = json.dumps(event_source("slipway", stage))  # the stage's own events only
        text = text.replace(names.prefix, "<prefix>").replace(pointer_folder, "<pointer folder>")
        documents[stage] = text.replace(source, '"<event source>"')
    assert documents["prod"] == documents["dev"], (
        "prod's function roles differ from dev's: run the paths above for prod too (parametrize `outcome`)"
    )
