"""Privacy: the values of excluded features, and request bodies, reach no capture object, log or drift report.

A small recipe with two excluded features (a number and a category) is served
through the real handlers under moto; every request carries one distinctive
secret value of each. Log output is everything written to stdout and stderr,
every record of the project's, the Powertools service's and Powertools' own
loggers at DEBUG (captured by a handler on each, whatever stream Powertools
bound at import), and the traceback of any exception that escapes a handler,
which the Lambda runtime would log.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any

import boto3
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.adapters import factory
from functions.core.batch import BatchItem
from functions.core.capture import CAPTURE_MARKER, CaptureRecord
from functions.core.jobs import JobMessage, JobRequest, new_job_id, now
from functions.core.registry import Registry
from functions.training.train import Bundle, train_bundle
from slipway.local.async_jobs import WORKER_MODULE
from slipway.local.lambda_runtime import FakeLambdaContext, cold_start
from slipway.local.sqs import SqsEventSource, sqs_event
from stage.environments import inference_environment, monitor_environment, retrain_environment, worker_environment
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import load_settings
from tests.conftest import REGION, Invoke

SECRET_INCOME = 314159.27  # outside the training range, so its row is flagged out of range for "income"
SECRET_POSTCODE = "postcode-XQ7-SECRET"  # an unseen category, flagged out of range for "postcode"
SECRETS = ("314159", SECRET_POSTCODE)
EXCLUDED = ("income", "postcode")
BATCH_MODULE = "functions.inference.batch_handler"


def _recipe() -> types.ModuleType:
    rng = np.random.default_rng(7)
    rows = 400
    age = np.round(rng.uniform(20, 80, rows), 1)
    income = np.round(rng.uniform(20_000, 120_000, rows), 2)
    postcode = rng.choice(["N1", "E2", "SW3", "W4"], rows)
    target = np.where(age + rng.normal(0, 10, rows) > 50, "yes", "no")
    recipe = types.ModuleType("tmp_private_recipe")
    recipe.SEED, recipe.TASK, recipe.METRIC = 7, "classification", "accuracy"  # type: ignore[attr-defined]
    recipe.CAPTURE_EXCLUDE = list(EXCLUDED)  # type: ignore[attr-defined]
    recipe.load_data = lambda: ({"age": age, "income": income, "postcode": postcode}, target)  # type: ignore[attr-defined]
    prep = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("postcode", OneHotEncoder(handle_unknown="ignore"), ["postcode"]),
        ]
    )
    recipe.build = lambda seed: Pipeline(  # type: ignore[attr-defined]
        [("prep", prep), ("classify", LogisticRegression(random_state=seed))]
    )
    return recipe


@pytest.fixture(scope="module")
def private_bundle() -> Bundle:
    return train_bundle(_recipe())


@pytest.fixture
def live_private(registry: Registry, private_bundle: Bundle) -> Bundle:
    registry.register(private_bundle.manifest, private_bundle.onnx_bytes)
    registry.promote(private_bundle.version, "test")
    return private_bundle


def _row(age: float) -> dict[str, Any]:
    return {"age": age, "income": SECRET_INCOME, "postcode": SECRET_POSTCODE}


# A record's clock and process fields carry nothing from a request, and their digits can hold a secret's
# by chance (relativeCreated 155955.3141593933 held "314159"): they are left out of the text searched.
_NOT_CONTENT = frozenset({"created", "msecs", "relativeCreated", "thread", "process", "lineno"})


class _Everything(logging.Handler):
    """Every record, with its arguments, extra fields and exception, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exception = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        fields = {name: value for name, value in vars(record).items() if name not in _NOT_CONTENT}
        self.lines.append(f"{record.getMessage()} {fields!r} {exception}")


@contextmanager
def _log_output(capsys: pytest.CaptureFixture[str], service: str) -> Iterator[Callable[[], str]]:
    """All log output while the block runs; call the yielded function for the text so far."""
    handler = _Everything()
    names = ["functions", "slipway", service, "aws_lambda_powertools"]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in [*loggers, logging.getLogger()]:
        logger.addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    captured: list[str] = []

    def text() -> str:
        out, err = capsys.readouterr()
        captured.extend((out, err))
        return "\n".join([*captured, *handler.lines])

    try:
        yield text
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for logger in [*loggers, logging.getLogger()]:
            logger.removeHandler(handler)


def _escaped(call: Callable[[], Any]) -> tuple[Any, str]:
    """The call's result, or None and the traceback the Lambda runtime would log for what it raised."""
    try:
        return call(), ""
    except Exception as exc:
        return None, "".join(traceback.format_exception(exc))


def _assert_secret_free(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def _capture_records(text: str) -> list[bytes]:
    return [line.encode() for line in text.splitlines() if CAPTURE_MARKER in line and line.startswith("{")]


def test_predict_captures_the_other_features_and_logs_no_secret(
    live_private: Bundle,
    invoke_factory: Callable[[], Invoke],
    names: ResourceNames,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoke = invoke_factory()
    with _log_output(capsys, names.inference_service) as logs:
        status, body = invoke("POST", "/predict", {"instances": [_row(30.0 + i % 40) for i in range(250)]})
        assert status == 200 and len(body["predictions"]) == 250
        assert "income" in body["predictions"][0]["out_of_range"]  # the client is told; the capture is not
        refused = invoke("POST", "/predict", {"instances": [{**_row(40.0), "income": -SECRET_INCOME}]})
        assert refused[0] == 422  # the answer quotes the value to its sender, and nothing else does
        feedback = invoke(
            "POST", "/feedback", {"items": [{"request_id": "r", "label": "yes", "postcode": SECRET_POSTCODE}]}
        )
        assert feedback[0] == 422
        output = logs()

    lines = _capture_records(output)
    records = [CaptureRecord.model_validate_json(line) for line in lines]
    assert sum(r.rows for r in records) == 250
    for record in records:
        assert list(record.features) == ["age"]
        assert all(not flags for flags in (*record.imputed, *record.out_of_range))
    assert [row.features["age"] for r in records for row in r.row_records()] == [30.0 + i % 40 for i in range(250)]

    # Firehose lands the lines in S3 unchanged; the monitor reads them back and reports.
    store = factory.monitoring_store(names.artifacts_bucket)
    served = records[0].time
    key = store.put_capture(served.replace(minute=0, second=0, microsecond=0), "part-1", lines)
    captured_object = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=key)["Body"].read().decode()
    _assert_secret_free(captured_object)

    for variable, value in monitor_environment(load_settings("dev"), names).items():
        monkeypatch.setenv(variable, value)
    monitor = cold_start("functions.monitor.handler")
    with _log_output(capsys, load_settings("dev").project + "-monitor") as logs:
        summary = monitor.monitor(served + timedelta(hours=1))
        monitor_output = logs()
    report_json = store._get(summary["report"]).decode()
    report_html = store._get(summary["html"]).decode()
    assert "monitor cycle" in monitor_output
    for text in (output, monitor_output, report_json, report_html):
        _assert_secret_free(text)

    report = json.loads(report_json)["report"]
    assert report["excluded_features"] == list(EXCLUDED)
    assert [f["name"] for f in report["features"]] == ["age"]
    assert report["features"][0]["psi"] is not None and report["rows"] == 250
    assert "no drift is computed for: income, postcode" in report_html
    emf = [json.loads(line) for line in monitor_output.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert {doc["feature"] for doc in emf if "feature" in doc} == {"age", "prediction"}


def test_async_jobs_log_no_secret_even_when_the_live_spec_refuses_their_rows(
    live_private: Bundle,
    requests_queue: str,
    invoke_factory: Callable[[], Invoke],
    names: ResourceNames,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke = invoke_factory()
    worker = cold_start(WORKER_MODULE)
    with _log_output(capsys, names.inference_service) as logs:
        status, accepted = invoke("POST", "/predict/async", {"instances": [_row(35.0), _row(65.0)]})
        assert status == 202
        source = SqsEventSource(
            boto3.client("sqs"), queue_url=requests_queue, handler=worker.lambda_handler, region=REGION
        )
        assert source.drain() == 1
        job = invoke("GET", f"/predict/async/{accepted['job_id']}")[1]
        assert job["status"] == "done", job

        # Rows accepted under an earlier spec that the live one refuses: the worker fails the record.
        job_id = new_job_id()
        refused = [{**_row(40.0), "income": -SECRET_INCOME}]
        factory.job_store(names.artifacts_bucket).put_request(
            JobRequest(job_id=job_id, instances=refused, submitted_at=now(), validated_by="older")
        )
        message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": JobMessage(job_id=job_id).model_dump_json()}
        event = sqs_event([message], queue_url=requests_queue, region=REGION)
        answer, escaped = _escaped(lambda: worker.lambda_handler(event, FakeLambdaContext()))
        output = logs() + escaped

    assert answer is None and "refuses its rows" in escaped and "instances.0.income" in escaped
    assert "job answered" in output  # the harness sees the Powertools logger's records
    _assert_secret_free(output)


def test_batch_scoring_logs_no_secret(
    live_private: Bundle, names: ResourceNames, handler_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["age", "income", "postcode"], lineterminator="\n")
    writer.writeheader()
    writer.writerows([_row(35.0), _row(65.0), {**_row(50.0), "income": -SECRET_INCOME}])
    boto3.client("s3").put_object(Bucket=names.artifacts_bucket, Key="batch/in/part-0.csv", Body=out.getvalue())
    handler = cold_start(BATCH_MODULE)
    with _log_output(capsys, names.inference_service) as logs:
        plan, escaped_plan = _escaped(
            lambda: handler.plan_handler(
                {"input_prefix": "batch/in/", "output_prefix": "batch/out/", "run_id": "run-1"}, FakeLambdaContext()
            )
        )
        items = _batch_items(names, plan["manifest_key"])
        entries = [_escaped(partial(handler.score_handler, item, FakeLambdaContext())) for item in items]
        output = logs() + escaped_plan + "".join(escaped for _, escaped in entries)

    assert [(entry["rows"], entry["errors"]) for entry, _ in entries] == [(2, 1)]
    _assert_secret_free(output)


def _batch_items(names: ResourceNames, manifest_key: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=names.artifacts_bucket, Key=manifest_key)["Body"].read()
    return [BatchItem.model_validate(item).model_dump(mode="json") for item in json.loads(body)]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_no_function_environment_turns_on_event_logging(stage: str) -> None:
    """Powertools logs whole events (bodies) with these variables true; no function of the stack sets them."""
    settings = load_settings(stage)
    names = ResourceNames.of(settings, account=LOCAL_ACCOUNT, region=REGION)
    environments = [
        inference_environment(settings, names),
        worker_environment(settings, names, service=names.inference_service),
        monitor_environment(settings, names),
        retrain_environment(settings, names),
    ]
    for environment in environments:
        assert not set(environment) & {"POWERTOOLS_LOGGER_LOG_EVENT", "POWERTOOLS_EVENT_HANDLER_DEBUG",
                                       "POWERTOOLS_DEV", "POWERTOOLS_DEBUG"}  # fmt: skip
        assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_a_candidate_that_refuses_the_rows_says_where_and_why_never_the_values(
    registry: Registry,
    live_private: Bundle,
    invoke_factory: Callable[[], Invoke],
    names: ResourceNames,
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    # A candidate whose spec refuses incomes over 200,000: live serves the secret income, the candidate refuses it
    # with a message that quotes it. Neither the log nor the capture record may carry that message.
    manifest = live_private.manifest
    features = [
        f.model_copy(update={"valid_max": 200_000.0}) if f.name == "income" else f
        for f in manifest.feature_spec.features
    ]
    spec = manifest.feature_spec.model_copy(update={"features": features})
    candidate = manifest.model_copy(update={"feature_spec": spec}).with_version(live_private.onnx_bytes)
    registry.register(candidate, live_private.onnx_bytes)
    registry.start_rollout(candidate.version, mode, 100, "test")
    invoke = invoke_factory()
    with _log_output(capsys, names.inference_service) as logs:
        status, body = invoke("POST", "/predict", {"instances": [_row(40.0)]})
        output = logs()
    assert status == 200 and body["model_version"] == live_private.version  # live answered
    [record] = [CaptureRecord.model_validate_json(line) for line in _capture_records(output)]
    why = record.candidate_error if mode == "canary" else (record.shadow.error if record.shadow else None)
    assert why == "refused the rows at instances.0.income (range)", record
    _assert_secret_free(output)
