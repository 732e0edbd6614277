"""Async predictions end to end against moto: the routes, the worker, the dead letters and the fallback."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from functions.adapters import factory
from functions.core.jobs import REASON_WORKER_FAILED, JobMessage, JobResult
from functions.training.train import Bundle
from slipway.local.async_jobs import FALLBACK_MODULE, WORKER_MODULE, create_queues
from slipway.local.lambda_runtime import cold_start
from slipway.local.sqs import SqsEventSource
from stage.names import ResourceNames
from stage.settings import load_settings
from tests.conftest import REGION, Invoke, example_row

SETTINGS = load_settings("dev")
MAX_RECEIVES = SETTINGS.async_jobs.max_receive_count


@dataclass
class Queues:
    requests: str
    dead_letters: str

    def depth(self, url: str) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def queues(aws: None, names: ResourceNames, monkeypatch: pytest.MonkeyPatch) -> Queues:
    requests, dead_letters = create_queues(boto3.client("sqs"), SETTINGS, names)
    monkeypatch.setenv("REQUESTS_QUEUE_URL", requests)
    return Queues(requests, dead_letters)


@dataclass
class Workers:
    worker: Any
    fallback: Any
    requests: SqsEventSource
    dead_letters: SqsEventSource


@pytest.fixture
def workers(queues: Queues, handler_env: None, live_bundle: Bundle) -> Iterator[Workers]:
    """Cold worker and fallback containers, each fed by its queue as Lambda's event source would."""
    worker, fallback = cold_start(WORKER_MODULE), cold_start(FALLBACK_MODULE)
    sqs = boto3.client("sqs")
    yield Workers(
        worker,
        fallback,
        SqsEventSource(sqs, queue_url=queues.requests, handler=worker.lambda_handler, region=REGION),
        SqsEventSource(sqs, queue_url=queues.dead_letters, handler=fallback.lambda_handler, region=REGION),
    )


def rows(bundle: Bundle, count: int, start: int = 0) -> list[dict[str, float]]:
    return [example_row(bundle, start + i) for i in range(count)]


def submit(invoke: Invoke, instances: list[dict[str, Any]]) -> str:
    status, body = invoke("POST", "/predict/async", {"instances": instances})
    assert status == 202, body
    return str(body["job_id"])


def test_a_job_is_pending_then_done_with_the_predict_answer(
    queues: Queues, invoke: Invoke, workers: Workers, live_bundle: Bundle
) -> None:
    instances = rows(live_bundle, 5)
    job_id = submit(invoke, instances)
    assert invoke("GET", f"/predict/async/{job_id}") == (200, {"job_id": job_id, "status": "pending"})

    assert workers.requests.drain() == 1
    status, body = invoke("GET", f"/predict/async/{job_id}")
    _, sync = invoke("POST", "/predict", {"instances": instances})
    assert status == 200
    assert body["status"] == "done" and body["reason"] is None
    assert body["model_version"] == live_bundle.version == sync["model_version"]
    assert body["predictions"] == sync["predictions"]
    assert queues.depth(queues.requests) == 0 and queues.depth(queues.dead_letters) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": []},
        {"rows": [{"a": 1}]},
        {"instances": [{"mean_radius": "big"}]},
        {"instances": [{"no such feature": 1.0}]},
        {"instances": [{"mean_radius": 14.0}] * 1001},  # over the deployment's row limit (MAX_INSTANCES)
    ],
)
def test_bad_input_gets_the_predict_answer_and_is_never_queued(
    queues: Queues, invoke: Invoke, live_bundle: Bundle, payload: dict[str, Any], names: ResourceNames
) -> None:
    sync = invoke("POST", "/predict", payload)
    assert sync[0] in (400, 422)
    assert invoke("POST", "/predict/async", payload) == sync
    assert queues.depth(queues.requests) == 0
    listed = boto3.client("s3").list_objects_v2(Bucket=names.artifacts_bucket, Prefix="async/")
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job", "Z" * 32])
def test_an_unknown_job_is_404(queues: Queues, invoke: Invoke, live_bundle: Bundle, job_id: str) -> None:
    status, body = invoke("GET", f"/predict/async/{job_id}")
    assert status == 404
    assert body["errors"][0]["type"] == "not_found"


def test_every_job_ends_with_exactly_one_result_model_or_fallback(
    queues: Queues, invoke: Invoke, workers: Workers, live_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N jobs, some of which fail the worker on every receive: none lost, none duplicated."""
    total, poison_every = 12, 4
    job_ids = [submit(invoke, rows(live_bundle, 1 + i % 3, start=i)) for i in range(total)]
    poison = set(job_ids[::poison_every])
    attempts: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    real_process = workers.worker.async_jobs.process

    def flaky_process(message: JobMessage, *args: Any, **kwargs: Any) -> JobResult:
        attempts[message.job_id] += 1
        if message.job_id in poison:
            raise RuntimeError("this job breaks the worker")
        return real_process(message, *args, **kwargs)

    store = workers.worker.queue.store
    real_put = store.put_result

    def counted_put(result: JobResult) -> bool:
        written = real_put(result)
        writes[result.job_id] += written
        return written

    monkeypatch.setattr(workers.worker.async_jobs, "process", flaky_process)
    monkeypatch.setattr(store, "put_result", counted_put)
    monkeypatch.setattr(workers.fallback.queue.store, "put_result", counted_put)

    workers.requests.drain()
    assert queues.depth(queues.requests) == 0
    assert queues.depth(queues.dead_letters) == len(poison)
    assert all(attempts[job] == MAX_RECEIVES for job in poison)
    assert all(attempts[job] == 1 for job in set(job_ids) - poison)

    workers.dead_letters.drain()
    assert queues.depth(queues.dead_letters) == 0

    answers = {job: invoke("GET", f"/predict/async/{job}")[1] for job in job_ids}
    statuses = Counter(answer["status"] for answer in answers.values())
    assert statuses == {"done": total - len(poison), "fallback": len(poison)}
    assert writes == dict.fromkeys(job_ids, 1)
    fallback_answer = live_bundle.manifest.fallback
    for job in poison:
        answer = answers[job]
        assert answer["reason"] == REASON_WORKER_FAILED
        assert answer["model_version"] == live_bundle.version
        assert len(answer["predictions"]) == 1 + job_ids.index(job) % 3
        for prediction in answer["predictions"]:
            assert prediction["fallback"] == REASON_WORKER_FAILED
            assert prediction["label"] == fallback_answer.label


def test_a_message_delivered_twice_produces_one_result(
    queues: Queues, invoke: Invoke, workers: Workers, live_bundle: Bundle, names: ResourceNames
) -> None:
    job_id = submit(invoke, rows(live_bundle, 2))
    boto3.client("sqs").send_message(QueueUrl=queues.requests, MessageBody=JobMessage(job_id=job_id).model_dump_json())
    assert workers.requests.drain() == 2
    store = factory.job_store(names.artifacts_bucket)
    first = store.get_result(job_id)
    assert first is not None and first.status == "done"
    # A third delivery, and the dead-letter fallback racing it: the stored result stands.
    async_jobs = workers.worker.async_jobs
    assert async_jobs.process(JobMessage(job_id=job_id), workers.worker.live_model.current(), store=store) == first
    late = async_jobs.answer_dead_letter(JobMessage(job_id=job_id), store=store, fallback=None, version=None)
    assert late == first == store.get_result(job_id)


def test_the_redrive_policy_moves_a_failing_message_after_max_receives(
    queues: Queues, workers: Workers, live_bundle: Bundle
) -> None:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queues.requests, AttributeNames=["All"])[
        "Attributes"
    ]
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["maxReceiveCount"] == MAX_RECEIVES
    assert policy["deadLetterTargetArn"].endswith(":" + queues.dead_letters.rsplit("/", 1)[-1])
    # A job whose request is gone fails every receive.
    boto3.client("sqs").send_message(
        QueueUrl=queues.requests, MessageBody=JobMessage(job_id="f" * 32).model_dump_json()
    )
    polls = [workers.requests.poll_once() for _ in range(MAX_RECEIVES + 1)]
    assert [p.failed for p in polls] == [1] * MAX_RECEIVES + [0]
    assert queues.depth(queues.requests) == 0 and queues.depth(queues.dead_letters) == 1


def test_a_dead_letter_the_fallback_cannot_handle_stays_in_the_queue(
    queues: Queues, workers: Workers, live_bundle: Bundle
) -> None:
    # A body that is not a job message is set aside instead (tests/functions/test_malformed_events.py).
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queues.dead_letters, MessageBody=JobMessage(job_id="e" * 32).model_dump_json())
    sqs.send_message(QueueUrl=queues.dead_letters, MessageBody=JobMessage(job_id="d" * 32).model_dump_json())
    result = workers.dead_letters.poll_once()
    assert (result.received, result.failed) == (2, 2)
    assert queues.depth(queues.dead_letters) == 2
    retention = sqs.get_queue_attributes(QueueUrl=queues.dead_letters, AttributeNames=["MessageRetentionPeriod"])
    assert retention["Attributes"]["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_slipway_redrive_moves_dead_letters_back_and_the_worker_then_answers(
    queues: Queues, invoke: Invoke, workers: Workers, live_bundle: Bundle, capsys: pytest.CaptureFixture[str]
) -> None:
    from slipway import cli

    job_id = submit(invoke, rows(live_bundle, 1))
    sqs = boto3.client("sqs")
    received = sqs.receive_message(QueueUrl=queues.requests)["Messages"][0]
    # As if the worker had failed on every receive: the message is now a dead letter.
    sqs.send_message(QueueUrl=queues.dead_letters, MessageBody=received["Body"])
    sqs.delete_message(QueueUrl=queues.requests, ReceiptHandle=received["ReceiptHandle"])

    assert cli.main(["redrive"]) == 0
    assert "moved 1 dead letter" in capsys.readouterr().out
    assert queues.depth(queues.dead_letters) == 0 and queues.depth(queues.requests) == 1
    workers.requests.drain()
    assert invoke("GET", f"/predict/async/{job_id}")[1]["status"] == "done"


def _as(handler: Any, api_key_id: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request API Gateway authenticated with the API key `api_key_id`."""
    from slipway.local.lambda_runtime import FakeLambdaContext, HttpRequest, proxy_event

    event = proxy_event(HttpRequest(method, path, body=None if body is None else json.dumps(body)))
    event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    response = handler.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_job_is_answered_to_its_submitter_only(
    queues: Queues, handler_module: Any, workers: Workers, live_bundle: Bundle
) -> None:
    status, accepted = _as(handler_module, "alice", "POST", "/predict/async", {"instances": rows(live_bundle, 2)})
    assert status == 202
    job_id = accepted["job_id"]
    stored = factory.job_store(handler_module.config.artifacts_bucket).get_request(job_id)
    assert stored is not None and stored.caller == "key:alice"
    assert workers.requests.drain() == 1
    assert _as(handler_module, "alice", "GET", f"/predict/async/{job_id}")[1]["status"] == "done"
    # Another caller who learns the id is told there is no such job: a known id is no key to another's answers.
    status, body = _as(handler_module, "mallory", "GET", f"/predict/async/{job_id}")
    assert status == 404 and body["errors"][0]["type"] == "not_found"
