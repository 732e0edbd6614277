"""Faults injected under the real handlers against moto: S3, SSM and SQS down, slow or throttled; a worker killed.

Each fault is injected at botocore's `before-send` hook of the function's own client,
so the handler's code runs as it would when AWS fails: an unreachable endpoint, a
read that times out (what a call slower than the client's 5 s read timeout raises),
and throttling answered with HTTP 400 ThrottlingException (retried by botocore's
standard mode, then raised). For each: /predict never answers 5xx, nothing
accepted is lost, and the failure is in a log line or a metric.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from functions.adapters import factory
from functions.core.jobs import JobMessage
from functions.core.registry import Registry
from functions.training.train import Bundle
from slipway.local.async_jobs import WORKER_MODULE
from slipway.local.lambda_runtime import cold_start
from slipway.local.sqs import SqsEventSource
from stage.names import ResourceNames
from tests.conftest import REGION, Invoke, example_row

Fault = Callable[..., Any]


class Killed(Exception):
    """The container dies: what Lambda's event source sees is a failed invocation."""


class _Headers(dict[str, str]):
    def get_all(self, name: str) -> list[str]:  # what botocore's response parser may ask of raw headers
        return [self[name]] if name in self else []


def unreachable(request: Any, **_: Any) -> None:
    raise EndpointConnectionError(endpoint_url=request.url)


def too_slow(request: Any, **_: Any) -> None:
    raise ReadTimeoutError(endpoint_url=request.url)


def throttled(request: Any, **_: Any) -> AWSResponse:
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    is_s3 = ".s3." in request.url or "s3.amazonaws" in request.url
    raw = type("Raw", (), {"stream": lambda self, **kw: iter([xml if is_s3 else body])})()
    status = 503 if is_s3 else 400
    return AWSResponse(request.url, status, _Headers({"x-amzn-requestid": "fault"}), raw)


FAULTS = [unreachable, too_slow, throttled]
FAULT_IDS = ["unreachable", "slow", "throttled"]


@contextmanager
def failing(service: str, fault: Fault) -> Iterator[list[str]]:
    """Every call of the functions' `service` client fails with `fault`; yields the operations attempted."""
    client = factory.client(service)
    attempted: list[str] = []

    def hook(request: Any, **kwargs: Any) -> Any:
        attempted.append(request.url)
        return fault(request, **kwargs)

    client.meta.events.register_first(f"before-send.{client.meta.service_model.service_id.hyphenize()}", hook)
    try:
        yield attempted
    finally:
        client.meta.events.unregister(f"before-send.{client.meta.service_model.service_id.hyphenize()}", hook)


def _predict_is_answered(invoke: Invoke, bundle: Bundle, *, version: str, fallback: str | None) -> None:
    status, body = invoke("POST", "/predict", {"instances": [example_row(bundle, 3)]})
    assert status == 200, body
    assert body["model_version"] == version
    assert body["predictions"][0]["fallback"] == fallback


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_ssm_failing_under_a_warm_container_keeps_the_live_model(
    live_bundle: Bundle,
    refreshing_invoke_factory: Callable[[], Invoke],
    fault: Fault,
    caplog: Any,
) -> None:
    invoke = refreshing_invoke_factory()
    with failing("ssm", fault) as attempted:
        _predict_is_answered(invoke, live_bundle, version=live_bundle.version, fallback=None)
        assert invoke("GET", "/health")[1]["status"] == "ready"
    assert attempted, "the refresh did call SSM"
    assert "live pointer unreadable; keeping the last one" in caplog.text


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_ssm_failing_at_a_cold_start_answers_with_plan_b_then_recovers(
    live_bundle: Bundle, refreshing_invoke_factory: Callable[[], Invoke], fault: Fault
) -> None:
    with failing("ssm", fault):
        invoke = refreshing_invoke_factory()
        _predict_is_answered(invoke, live_bundle, version=None, fallback="registry_unreachable")
        assert invoke("GET", "/health")[1] == {
            "status": "degraded",
            "model_version": None,
            "reason": "registry_unreachable",
            "candidate": None,
        }
    _predict_is_answered(invoke, live_bundle, version=live_bundle.version, fallback=None)


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_s3_failing_at_a_cold_start_answers_with_the_pointers_plan_b_then_recovers(
    live_bundle: Bundle, refreshing_invoke_factory: Callable[[], Invoke], fault: Fault
) -> None:
    with failing("s3", fault):
        invoke = refreshing_invoke_factory()
        status, body = invoke("POST", "/predict", {"instances": [example_row(live_bundle)]})
        assert status == 200
        assert body["predictions"][0]["fallback"] == "model_unavailable"
        assert body["predictions"][0]["label"] == live_bundle.manifest.fallback.label  # from the pointer
    _predict_is_answered(invoke, live_bundle, version=live_bundle.version, fallback=None)


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_s3_failing_under_the_storing_routes_is_a_503_that_stores_nothing(
    live_bundle: Bundle,
    requests_queue: str,
    invoke_factory: Callable[[], Invoke],
    fault: Fault,
    caplog: Any,
) -> None:
    invoke = invoke_factory()
    with failing("s3", fault):
        status, body = invoke("POST", "/predict/async", {"instances": [example_row(live_bundle)]})
        assert (status, body["message"]) == (
            503,
            "a storage dependency is unavailable; nothing was stored, retry shortly",
        )
        feedback = {"items": [{"request_id": "r-1", "row": 0, "label": "benign"}]}
        assert invoke("POST", "/feedback", feedback)[0] == 503
        _predict_is_answered(invoke, live_bundle, version=live_bundle.version, fallback=None)
    queued = boto3.client("sqs").get_queue_attributes(
        QueueUrl=requests_queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert queued["Attributes"]["ApproximateNumberOfMessages"] == "0", "no job was queued without its request"
    assert "a dependency failed; answered 503" in caplog.text


def test_sqs_failing_after_the_request_is_stored_is_a_503(
    live_bundle: Bundle, requests_queue: str, invoke_factory: Callable[[], Invoke]
) -> None:
    invoke = invoke_factory()
    with failing("sqs", unreachable):
        status, _ = invoke("POST", "/predict/async", {"instances": [example_row(live_bundle)]})
    assert status == 503  # the client was told nothing was accepted; the stored request is an orphan, never answered
    status, body = invoke("POST", "/predict/async", {"instances": [example_row(live_bundle)]})
    assert status == 202, body


# --- the async worker -------------------------------------------------------------------------


def _submit(invoke: Invoke, bundle: Bundle, count: int) -> list[str]:
    ids = []
    for i in range(count):
        status, body = invoke("POST", "/predict/async", {"instances": [example_row(bundle, i)]})
        assert status == 202
        ids.append(body["job_id"])
    return ids


@pytest.mark.parametrize("dies", ["before-the-result", "after-the-result"])
def test_a_worker_killed_mid_job_leaves_every_job_with_exactly_one_answer(
    requests_queue: str, live_bundle: Bundle, invoke_factory: Callable[[], Invoke], names: ResourceNames, dies: str
) -> None:
    """The container dies inside the invocation; SQS delivers the whole batch again to a new one."""
    invoke = invoke_factory()
    job_ids = _submit(invoke, live_bundle, 4)
    first = cold_start(WORKER_MODULE)
    writes: list[str] = []
    real_put = first.queue.store.put_result

    def put_then_maybe_die(result: Any) -> bool:
        if dies == "after-the-result":
            real_put(result)
            writes.append(result.job_id)
        raise Killed("the container was killed")

    first.queue.store.put_result = put_then_maybe_die

    def killed_container(event: dict[str, Any], context: Any) -> Any:
        first.lambda_handler(event, context)
        raise Killed("the invocation never returned")  # the runtime reports it failed: every record comes back

    sqs = boto3.client("sqs")
    SqsEventSource(sqs, queue_url=requests_queue, handler=killed_container, region=REGION, batch_size=4).poll_once()
    second = cold_start(WORKER_MODULE)  # a new container, with its own clients and store
    SqsEventSource(sqs, queue_url=requests_queue, handler=second.lambda_handler, region=REGION).drain()

    store = factory.job_store(names.artifacts_bucket)
    answers = [store.get_result(job) for job in job_ids]
    assert all(answer is not None and answer.status == "done" for answer in answers)
    assert writes == (job_ids if dies == "after-the-result" else []), "the redelivery wrote no second result"
    assert (
        sqs.get_queue_attributes(QueueUrl=requests_queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_s3_failing_under_the_worker_returns_the_records_to_the_queue(
    requests_queue: str,
    live_bundle: Bundle,
    refreshing_invoke_factory: Callable[[], Invoke],  # on AWS the redelivery comes after the refresh
    names: ResourceNames,
    fault: Fault,
) -> None:
    invoke = refreshing_invoke_factory()
    job_ids = _submit(invoke, live_bundle, 2)
    worker = cold_start(WORKER_MODULE)
    source = SqsEventSource(boto3.client("sqs"), queue_url=requests_queue, handler=worker.lambda_handler, region=REGION)
    with failing("s3", fault):
        assert source.poll_once().failed == 2
    assert source.drain() == 2  # redelivered once S3 is back
    store = factory.job_store(names.artifacts_bucket)
    results = [store.get_result(job) for job in job_ids]
    assert [r.status if r else None for r in results] == ["done", "done"], results


def test_a_duplicate_delivery_racing_the_fallback_keeps_the_first_answer(
    requests_queue: str, live_bundle: Bundle, invoke_factory: Callable[[], Invoke], names: ResourceNames
) -> None:
    invoke = invoke_factory()
    [job_id] = _submit(invoke, live_bundle, 1)
    worker = cold_start(WORKER_MODULE)
    store = factory.job_store(names.artifacts_bucket)
    message = JobMessage(job_id=job_id)
    # The fallback answers first (the message was dead-lettered), then a late duplicate reaches the worker.
    early = worker.async_jobs.answer_dead_letter(message, store=store, fallback=None, version=live_bundle.version)
    late = worker.async_jobs.process(message, worker.live_model.current(), store=store)
    assert early.status == "fallback" and late == early == store.get_result(job_id)


def test_registry_writers_refuse_clearly_while_ssm_is_down(live_bundle: Bundle, registry: Registry) -> None:
    with failing("ssm", unreachable), pytest.raises(EndpointConnectionError):
        registry.promote(live_bundle.version, "during an outage")
    assert registry.live().version == live_bundle.version
    assert len(registry.pointer.history()) == 2, "init and the one promotion: the outage wrote nothing"
