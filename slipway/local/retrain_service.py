"""The retrain pipeline's stand-ins in the local stack: the state machine, the drift rule and its cool-down.

moto stores EventBridge rules but never invokes Lambda targets, so the DriftDetected
rule here targets an SQS queue (which moto does deliver to) and a loop hands each
event to the same `on_drift` decision the trigger function runs on AWS. The weekly
schedule is not simulated; `slipway retrain` starts a run by hand.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from datetime import UTC, datetime, timedelta

import boto3

from functions.adapters import factory
from functions.adapters.retrain_control import StepFunctionsStarter
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.events import DRIFT_DETECTED, DriftDetectedDetail, event_source
from functions.retrain.control import on_drift
from slipway.local.retrain import LocalRetrain
from slipway.local.services import LocalContext


class RetrainService:
    """Creates the retrain state machine in moto and starts runs for drift events, honouring the cool-down."""

    def __init__(self, *, poll_seconds: float = 1.0) -> None:
        self.poll_seconds = poll_seconds
        self.retrain: LocalRetrain | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue_url = ""

    def start(self, context: LocalContext) -> None:
        names, settings = context.names, context.settings
        self.retrain = LocalRetrain(settings, names)
        sqs = boto3.client("sqs", region_name=names.region)
        self._queue_url = sqs.create_queue(QueueName=f"{names.prefix}-local-drift-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events", region_name=names.region)
        rule = f"{names.prefix}-retrain-on-drift"
        pattern = {"source": [event_source(names.project, names.stage)], "detail-type": [DRIFT_DETECTED]}
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, Targets=[{"Id": "drift-queue", "Arn": queue_arn}])
        cooldown = timedelta(minutes=settings.retrain.cooldown_minutes)
        self._thread = threading.Thread(target=self._loop, args=(names.artifacts_bucket, cooldown), daemon=True)
        self._thread.start()

    def _loop(self, bucket: str, cooldown: timedelta) -> None:
        assert self.retrain is not None
        sqs = boto3.client("sqs", region_name=self.retrain.names.region)
        store = S3RetrainStore(factory.client("s3"), bucket)
        starter = StepFunctionsStarter(factory.client("stepfunctions"), self.retrain.state_machine_arn)
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                for message in messages.get("Messages", []):
                    detail = DriftDetectedDetail.model_validate(json.loads(message["Body"])["detail"])
                    on_drift(detail, store, starter, cooldown=cooldown, now=datetime.now(UTC))
                    sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:  # moto away or a bad event: logged, and polled again (a message not deleted returns)
                print("local retrain trigger: poll failed; retrying", flush=True)
                traceback.print_exc(file=sys.stdout)
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.retrain is not None:
            self.retrain.close()
