"""Malformed events for every handler API Gateway does not front, and generated feedback: what each must do.

- SQS worker: an event that is not an SQS event is refused whole (MalformedEvent). A record whose
  body is not a job message is a batch item failure, logged with its message id: the redrive
  policy takes it to the dead-letter queue, and the other records of the batch are answered.
- SQS fallback (the dead-letter queue): such a record names no job, so no receive can ever answer
  it; it is set aside (logged whole with its message id, counted in AsyncPoisonMessages, which
  alarms) and deleted, never redelivered for the queue's 14 days. Other records are answered.
- Step Functions tasks (batch plan and score, every retrain step): MalformedEvent naming the
  fields and rules, never the values; neither state machine retries it.
- Retrain control (EventBridge, asynchronous): MalformedEvent; after Lambda's retries the event
  lands in the failed-invocations queue, which alarms.
- Monitor: its invocation event carries nothing it reads, so any event runs the cycle; capture
  lines that are not capture records are skipped, logged and counted, never fatal.
- POST /feedback: any body is stored and answered 200, or refused with a 4xx ErrorBody having
  stored nothing; what it stores never breaks the monitor's quality measurement.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from functions.adapters import factory
from functions.core import layout
from functions.core.errors import MalformedEvent
from functions.core.jobs import JobMessage, JobRequest, new_job_id, now
from functions.inference.schemas import ErrorBody
from functions.monitor.service import Window
from functions.training.train import Bundle
from slipway.local.async_jobs import create_queues
from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, cold_start, proxy_event
from slipway.local.sqs import SqsEventSource
from stage.environments import monitor_environment, retrain_environment
from stage.names import ResourceNames
from stage.settings import load_settings
from stage.workflows.batch import batch_definition
from stage.workflows.retrain import RetrainSteps, retrain_definition
from tests.capture_lines import capture_lines
from tests.conftest import REGION, example_row

SETTINGS = load_settings("dev")
GENERATED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET = "s3cr3t-value-\u00e9"
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([10**400, 1e308, math.nan, math.inf, "", "\x00", "\U0001f600", SECRET])
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# What arrives where an event (a dict of its source's shape) belongs.
NOT_EVENTS: list[Any] = [None, [], [{}], "event", 0, 1.5, True, {}, {"unexpected": SECRET}, {"Records": SECRET}]


def _raises_malformed(handler: Callable[..., Any], event: Any) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as raised:
        handler(event, FakeLambdaContext())
    assert SECRET not in str(raised.value), "the message names fields and rules, never the values sent"
    return raised.value


# --- the SQS handlers ----------------------------------------------------------------------------------


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    """One record of an SQS event, as Lambda's event source mapping sends it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000", "SenderId": "x"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(errors="surrogatepass")).hexdigest(),  # SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:queue",
        "awsRegion": REGION,
    }


POISON_BODIES = [
    "", "not json", "null", "[]", '"text"', "{}", "1e999", '{"job_id": 1}', '{"job_id": null}',
    '{"job_id": "' + "Z" * 32 + '"}', '{"job_id": "../../models/x"}', '{"job_id": "' + "a" * 32 + '", "extra": 1}',
    '{"job_id": "' + "a" * 32 + '"', "\U0001f600" * 50, "x" * 262_144, "[" * 10_000 + "]" * 10_000,
    json.dumps({"instances": [{"mean_radius": SECRET}]}),
]  # fmt: skip


@pytest.fixture
def queue_handlers(aws: None, handler_env: None, live_bundle: Bundle) -> tuple[Any, Any]:
    """Cold worker and fallback containers, with the live model."""
    return cold_start("functions.inference.async_worker"), cold_start("functions.inference.async_fallback")


def _stored_job(module: Any, bundle: Bundle) -> str:
    """A job accepted by POST /predict/async (its request stored), as the queues' records name it."""
    job_id = new_job_id()
    module.queue.store.put_request(
        JobRequest(job_id=job_id, instances=[example_row(bundle)], submitted_at=now(), validated_by=bundle.version)
    )
    return job_id


def test_a_queue_handler_refuses_what_is_not_an_sqs_event(queue_handlers: tuple[Any, Any]) -> None:
    for module in queue_handlers:
        for event in NOT_EVENTS:
            assert "does not match SqsEvent" in str(_raises_malformed(module.lambda_handler, event))


def test_the_worker_fails_each_poison_record_alone_and_logs_its_id(
    queue_handlers: tuple[Any, Any], live_bundle: Bundle, caplog: pytest.LogCaptureFixture
) -> None:
    worker, _ = queue_handlers
    good = sqs_record(JobMessage(job_id=_stored_job(worker, live_bundle)).model_dump_json())
    poison = [sqs_record(body) for body in POISON_BODIES]
    response = worker.lambda_handler({"Records": [*poison, good]}, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in poison]}
    result = worker.queue.store.get_result(json.loads(good["body"])["job_id"])
    assert result is not None and result.status == "done"
    logged = _logged(caplog, "poison message")
    assert {line.message_id for line in logged} == {r["messageId"] for r in poison}
    assert all(line.levelname == "WARNING" and "does not match JobMessage" in line.error for line in logged)


def test_a_worker_batch_of_only_poison_raises_so_every_record_returns(queue_handlers: tuple[Any, Any]) -> None:
    # Powertools' default, kept: the whole batch returns to the queue, as reporting each record would,
    # and the failure also shows as a function error.
    worker, _ = queue_handlers
    with pytest.raises(BatchProcessingError):
        worker.lambda_handler({"Records": [sqs_record("not json")]}, FakeLambdaContext())


def test_the_fallback_keeps_poison_in_s3_logs_it_by_id_counts_it_and_answers_the_rest(
    queue_handlers: tuple[Any, Any],
    live_bundle: Bundle,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, fallback = queue_handlers
    good = sqs_record(JobMessage(job_id=_stored_job(fallback, live_bundle)).model_dump_json())
    gone = sqs_record(JobMessage(job_id="e" * 32).model_dump_json())  # a job whose request is gone
    poison = [sqs_record(body) for body in POISON_BODIES]
    capsys.readouterr()
    response = fallback.lambda_handler({"Records": [*poison, good, gone]}, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": gone["messageId"]}]}
    result = fallback.queue.store.get_result(json.loads(good["body"])["job_id"])
    assert result is not None and result.status == "fallback"
    set_aside = {line.message_id: line for line in _logged(caplog, "poison dead letter set aside")}
    assert set(set_aside) == {r["messageId"] for r in poison}
    s3 = boto3.client("s3")
    bucket = fallback.queue.config.artifacts_bucket
    for record in poison:
        line = set_aside[record["messageId"]]
        key = layout.async_poison_key(record["messageId"])
        assert line.levelname == "ERROR" and line.body_chars == len(record["body"])
        assert line.kept_at == f"s3://{bucket}/{key}" and line.md5_of_body == record["md5OfBody"]
        assert line.attributes["SentTimestamp"] == record["attributes"]["SentTimestamp"]
        assert not hasattr(line, "body"), "a poison body is kept in S3, never logged"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == record["body"].encode()
    output = capsys.readouterr().out
    assert SECRET not in output and SECRET not in caplog.text
    [counted] = [doc["AsyncPoisonMessages"] for doc in _emf(output) if "AsyncPoisonMessages" in doc]
    assert sum(counted) == len(poison)


def test_poison_that_cannot_be_kept_stays_in_the_dead_letter_queue(
    queue_handlers: tuple[Any, Any], live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 refusing the write: the poison record fails (it returns later), the good job beside it is answered."""
    _, fallback = queue_handlers

    def refuse(message_id: str, body: str) -> str:
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(fallback.queue.store, "put_poison", refuse)
    poison = sqs_record("not json")
    good = sqs_record(JobMessage(job_id=_stored_job(fallback, live_bundle)).model_dump_json())
    response = fallback.lambda_handler({"Records": [poison, good]}, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}


def test_a_fallback_batch_of_only_poison_succeeds_and_the_queue_keeps_none(
    queue_handlers: tuple[Any, Any], names: ResourceNames
) -> None:
    """Through the queue: a poison dead letter is deleted on its first receive, not redelivered for 14 days."""
    _, fallback = queue_handlers
    sqs = boto3.client("sqs")
    _, dead_letters = create_queues(sqs, SETTINGS, names)
    for body in ("not json", '{"job_id": 7}'):
        sqs.send_message(QueueUrl=dead_letters, MessageBody=body)
    source = SqsEventSource(sqs, queue_url=dead_letters, handler=fallback.lambda_handler, region=REGION)
    result = source.poll_once()
    assert (result.received, result.failed) == (2, 0)
    assert source.poll_once().received == 0
    assert fallback.lambda_handler({"Records": [sqs_record("{}")]}, FakeLambdaContext()) == {"batchItemFailures": []}


def _not_a_job_message(body: str) -> bool:
    try:
        JobMessage.model_validate_json(body)
    except ValidationError:
        return True
    return False


SQS_BODIES = st.one_of(
    st.text(max_size=300),
    JSON_VALUES.map(json.dumps),
    st.dictionaries(st.sampled_from(["job_id", "JOB_ID", "id", ""]), JSON_VALUES, max_size=3).map(json.dumps),
    st.binary(max_size=100).map(lambda data: data.decode("latin-1")),
)


@pytest.fixture
def good_job_body(queue_handlers: tuple[Any, Any], live_bundle: Bundle) -> str:
    return JobMessage(job_id=_stored_job(queue_handlers[0], live_bundle)).model_dump_json()


@settings(GENERATED, max_examples=400)
@given(body=SQS_BODIES)
def test_generated_bodies_fail_alone_in_the_worker_and_are_set_aside_by_the_fallback(
    queue_handlers: tuple[Any, Any], good_job_body: str, body: str
) -> None:
    assume(_not_a_job_message(body))
    worker, fallback = queue_handlers
    poison, good = sqs_record(body), sqs_record(good_job_body)
    event = {"Records": [poison, good]}
    failures = worker.lambda_handler(event, FakeLambdaContext())["batchItemFailures"]
    assert failures == [{"itemIdentifier": poison["messageId"]}]
    assert fallback.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}


# --- Step Functions tasks: batch scoring -----------------------------------------------------------------


@pytest.fixture
def batch_handlers(aws: None, handler_env: None) -> Any:
    return cold_start("functions.inference.batch_handler")


PLAN = {"input_prefix": "batch/in/", "output_prefix": "batch/out/", "run_id": "run-1"}
ITEM = {"key": "batch/in/a.csv", "etag": "e1", "input_prefix": "batch/in/", "output_prefix": "batch/out/"}
BAD_PLANS = [
    {**PLAN, "run_id": ""},
    {**PLAN, "input_prefix": 7},
    {**PLAN, "input_prefix": "models/"},  # outside batch/: the scoring function may not read there
    {**PLAN, "output_prefix": "batch/in/out/"},  # inside the input: outputs would be rescored
    {"input_prefix": "batch/in/", "output_prefix": "batch/out/"},
]
BAD_ITEMS = [
    {**ITEM, "key": "models/x.csv"},  # not under its input prefix
    {**ITEM, "key": "batch/in/"},
    {**ITEM, "output_prefix": "models/"},  # would write outside batch/
    {**ITEM, "etag": None},
    {k: v for k, v in ITEM.items() if k != "key"},
]


def test_the_batch_plan_refuses_a_malformed_input(batch_handlers: Any) -> None:
    for event in [*NOT_EVENTS, *BAD_PLANS]:
        assert "does not match PlanRequest" in str(_raises_malformed(batch_handlers.plan_handler, event))


def test_batch_scoring_refuses_a_malformed_item_before_reading_or_writing(
    batch_handlers: Any, names: ResourceNames
) -> None:
    for event in [*NOT_EVENTS, *BAD_ITEMS]:
        assert "does not match BatchItem" in str(_raises_malformed(batch_handlers.score_handler, event))
    assert boto3.client("s3").list_objects_v2(Bucket=names.artifacts_bucket)["KeyCount"] == 0


@settings(GENERATED, max_examples=300)
@given(event=JSON_VALUES | st.fixed_dictionaries({}, optional={k: JSON_VALUES for k in ITEM}))
def test_generated_batch_inputs_are_malformed_events(batch_handlers: Any, event: Any) -> None:
    for handler in (batch_handlers.plan_handler, batch_handlers.score_handler):
        _raises_malformed(handler, event)


def _first_retrier(state: dict[str, Any], error: str) -> dict[str, Any] | None:
    """The retrier Step Functions applies to `error` (the first that matches), if any."""
    for retrier in state.get("Retry", []):
        if error in retrier["ErrorEquals"] or {"States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]):
            return dict(retrier)
    return None


def test_neither_state_machine_retries_a_malformed_event() -> None:
    batch = batch_definition(plan_function="plan", score_function="score", bucket="b", max_concurrency=2)
    score = batch["States"]["ScoreObjects"]["ItemProcessor"]["States"]["ScoreObject"]
    assert _first_retrier(score, "SomeOtherError") is not None  # other failures are retried
    assert _first_retrier(score, MalformedEvent.__name__) == {"ErrorEquals": ["MalformedEvent"], "MaxAttempts": 0}
    assert _first_retrier(batch["States"]["Plan"], MalformedEvent.__name__) is None
    steps = RetrainSteps(prepare="p", train="t", evaluate="e", register="r", promote="pr", notify_topic="n")
    retrain = retrain_definition(steps, train_timeout_seconds=60, step_timeout_seconds=60)
    for name in ("Prepare", "Train", "Evaluate", "Register", "Promote"):
        state = retrain["States"][name]
        assert _first_retrier(state, MalformedEvent.__name__) is None, name
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}]


def test_a_batch_run_with_a_malformed_input_fails_at_once_naming_the_error(
    live_bundle: Bundle, names: ResourceNames, handler_env: None, tmp_path: Any
) -> None:
    """The very definition CDK deploys, executed by moto with the real handlers."""
    from slipway.local.batch_scoring import BatchScoringService
    from slipway.local.services import LocalContext

    service = BatchScoringService()
    service.start(LocalContext(settings=SETTINGS, names=names, aws_endpoint="", log_dir=tmp_path))
    try:
        assert service.runner is not None and service.state_machine_arn is not None
        result = service.runner.run(service.state_machine_arn, {**PLAN, "input_prefix": "models/"})
    finally:
        service.stop()
    assert not result.succeeded and result.error == "MalformedEvent"
    cause = str(result.cause)
    assert "does not match PlanRequest" in cause and "must be a key prefix under batch/" in cause


# --- Step Functions tasks: retrain; and the retrain control ----------------------------------------------


@pytest.fixture
def retrain_handlers(aws: None, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    arn = f"arn:aws:states:{REGION}:{names.account}:stateMachine:retrain"
    for key, value in retrain_environment(SETTINGS, names, state_machine_arn=arn, topic_arn="arn:topic").items():
        monkeypatch.setenv(key, value)
    steps, control = cold_start("functions.retrain.handler"), cold_start("functions.retrain.control")
    steps.reset()
    yield steps, control
    steps.reset()


STEPS = ["prepare_handler", "train_handler", "evaluate_handler", "register_handler", "promote_handler"]
DATA = {"run_id": "r", "reason": "x", "data_key": "k", "data_hash": "h", "rows": 1, "table_rows": 1, "labelled_rows": 0,
        "objects": 1, "objects_read": 1, "objects_dropped": 0, "watermark": None}  # fmt: skip
BAD_STEP_INPUTS = [
    {"run_id": ""},
    {"data": {**DATA, "rows": "many"}},
    {"data": {**DATA, "data_hash": None}, "candidate": {"version": SECRET}},
    {"version": None},
    {"version": ["a"]},
]


def test_every_retrain_step_refuses_a_malformed_input(retrain_handlers: tuple[Any, Any]) -> None:
    steps, _ = retrain_handlers
    for step in STEPS:
        for event in [*NOT_EVENTS, *BAD_STEP_INPUTS]:
            _raises_malformed(getattr(steps, step), event)


def _valid(model: type[BaseModel], event: Any) -> bool:
    try:
        model.model_validate(event)
    except ValidationError:
        return False
    return True


RETRAIN_KEYS = st.sampled_from(["run_id", "data", "version", "candidate", "reason"])


@settings(GENERATED, max_examples=200)
@given(event=JSON_VALUES | st.dictionaries(RETRAIN_KEYS, JSON_VALUES))
def test_generated_retrain_inputs_are_malformed_events(retrain_handlers: tuple[Any, Any], event: Any) -> None:
    from functions.retrain import schemas

    steps, _ = retrain_handlers
    models: list[type[BaseModel]] = [schemas.PrepareInput, schemas.TrainInput, schemas.EvaluateInput]
    models += [schemas.VersionInput, schemas.VersionInput]  # register, promote
    for step, model in zip(STEPS, models, strict=True):
        if not _valid(model, event):
            _raises_malformed(getattr(steps, step), event)


DRIFT_DETAIL = {
    "model_version": "v", "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T01:00:00Z",
    "rows": 10, "drift_share": 0.5, "drifted_features": ["a"], "report_key": "k",
}  # fmt: skip
BAD_CONTROL_EVENTS = [
    {"detail": None},
    {"detail": {}},
    {"detail": {**DRIFT_DETAIL, "drift_share": 7}},
    {"detail": {**DRIFT_DETAIL, "rows": -1, "alarmName": ""}},
    {"detail": {"alarmName": 12}},
    {"detail-type": "DriftDetected", "detail": SECRET},
]


def test_the_retrain_control_refuses_an_event_that_is_not_its_own(retrain_handlers: tuple[Any, Any]) -> None:
    _, control = retrain_handlers
    for event in [*NOT_EVENTS, *BAD_CONTROL_EVENTS]:
        assert "does not match DriftEvent" in str(_raises_malformed(control.drift_trigger_handler, event))
        assert "does not match AlarmEvent" in str(_raises_malformed(control.rollback_handler, event))


# --- the monitor ---------------------------------------------------------------------------------------


@pytest.fixture
def monitor(live_bundle: Bundle, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in monitor_environment(SETTINGS, names).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    return cold_start("functions.monitor.handler")


def test_the_monitor_runs_its_cycle_whatever_its_invocation_event(monitor: Any) -> None:
    for event in [*NOT_EVENTS, {"detail": {"x": [SECRET] * 1000}}]:
        summary = monitor.lambda_handler(event, FakeLambdaContext())
        assert summary["verdict"] == "insufficient_data" and summary["report"], event


def _valid_capture_line(bundle: Bundle, hour: datetime) -> dict[str, Any]:
    [line] = capture_lines(
        request_id="req-0", time=(hour + timedelta(minutes=5)).isoformat(), model_version=bundle.version,
        features=[example_row(bundle, 0), example_row(bundle, 1)], labels=["benign", "malignant"],
        probabilities=[{c: 0.5 for c in bundle.manifest.classes or ()}] * 2,
    )  # fmt: skip
    return dict(json.loads(line))


def _broken(line: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A capture line with fields replaced, removed or added, or raw bytes."""
    replaced = st.tuples(st.sampled_from(sorted(line)), JSON_VALUES).map(lambda kv: {**line, kv[0]: kv[1]})
    removed = st.sampled_from(sorted(line)).map(lambda key: {k: v for k, v in line.items() if k != key})
    column = st.sampled_from(sorted(line["features"])).flatmap(
        lambda name: JSON_VALUES.map(lambda value: {**line, "features": {**line["features"], name: value}})
    )
    records = st.one_of(replaced, removed, column, JSON_VALUES).map(lambda value: json.dumps(value).encode())
    return records | st.binary(max_size=200)


@settings(GENERATED, max_examples=150)
@given(data=st.data())
def test_generated_capture_lines_are_skipped_never_fatal(
    monitor: Any, live_bundle: Bundle, names: ResourceNames, data: st.DataObject
) -> None:
    window = monitor.window_of(datetime(2026, 1, 5, 10, 7, tzinfo=UTC), 1)
    good = _valid_capture_line(live_bundle, window.start)
    lines = data.draw(st.lists(_broken(good), min_size=1, max_size=4))
    store = factory.monitoring_store(names.artifacts_bucket)
    key = store.put_capture(window.start, "part-fuzz", [json.dumps(good).encode(), *lines])
    result = monitor.run_cycle(
        store=store, registry=monitor.registry, window=window,
        policy=monitor.config.policy.model_copy(update={"quality_window_hours": 1}),
    )  # fmt: skip
    physical_lines = sum(line.count(b"\n") + line.count(b"\r") + 1 for line in lines)  # raw bytes may hold breaks
    assert result.report.rows >= 2 and result.skipped_lines <= physical_lines
    boto3.client("s3").delete_object(Bucket=names.artifacts_bucket, Key=key)


# --- POST /feedback, and the monitor reading what it stored -------------------------------------------


# A label the live model can have is one of its classes; any other text or number is refused (422).
CLASSES = st.sampled_from(["benign", "malignant"])
ACCEPTABLE_ITEMS = st.fixed_dictionaries(
    {"request_id": st.sampled_from(["req-0", "req-1"]) | st.text(min_size=1, max_size=128), "label": CLASSES},
    optional={"row": st.integers(0, 3)},
) | st.fixed_dictionaries({"key": st.text(min_size=1, max_size=128), "label": CLASSES})
BROKEN_ITEMS = st.fixed_dictionaries(
    {"request_id": st.sampled_from(["req-0", "req-1"]) | st.text(max_size=130),
     "label": JSON_VALUES | st.floats() | st.text(max_size=20)},
    optional={"row": JSON_VALUES | st.integers(-2, 3), "extra": JSON_VALUES, "key": JSON_VALUES},
)  # fmt: skip
FEEDBACK_ITEMS = st.one_of(ACCEPTABLE_ITEMS, ACCEPTABLE_ITEMS, BROKEN_ITEMS)
FEEDBACK_BODIES = st.one_of(
    st.fixed_dictionaries({"items": st.lists(FEEDBACK_ITEMS, max_size=4)}),
    st.fixed_dictionaries({"items": JSON_VALUES}),
    JSON_VALUES,
)


def test_feedback_is_stored_whole_or_refused_whole_and_never_breaks_the_monitor(
    live_bundle: Bundle, names: ResourceNames, handler_env: None, monitor: Any
) -> None:
    handler = cold_start("functions.inference.handler")
    store = factory.monitoring_store(names.artifacts_bucket)
    received = datetime.now(UTC)
    hour = received.replace(minute=0, second=0, microsecond=0)
    store.put_capture(hour, "part-0", [json.dumps(_valid_capture_line(live_bundle, hour)).encode()])
    stored, posted = {"items": 0}, []

    @settings(GENERATED, max_examples=200)
    @given(body=FEEDBACK_BODIES)
    def post(body: Any) -> None:
        response = handler.lambda_handler(
            proxy_event(HttpRequest("POST", "/feedback", body=json.dumps(body))), FakeLambdaContext()
        )
        posted.append(response["statusCode"])
        answer = json.loads(response["body"])
        total = sum(1 for _ in store.feedback())
        if response["statusCode"] == 202:
            assert total == stored["items"] + answer["accepted"]
        else:
            assert 400 <= response["statusCode"] < 500 and ErrorBody.model_validate(answer).message
            assert total == stored["items"]
        stored["items"] = total

    post()
    assert len(posted) >= 200 and posted.count(202) >= 10, "the strategy reaches both answers"
    assert stored["items"] > 0, "some generated feedback was accepted"
    window = Window(received - timedelta(hours=1), received + timedelta(hours=1))
    result = monitor.run_cycle(
        store=store, registry=monitor.registry, window=window,
        policy=monitor.config.policy.model_copy(update={"quality_window_hours": 2}),
    )  # fmt: skip
    assert result.report_key


# --- helpers ---------------------------------------------------------------------------------------------


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> list[Any]:
    """The log records whose message starts with `message` (their `extra` fields as attributes)."""
    return [record for record in caplog.records if record.getMessage().startswith(message)]


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
