"""The retrain state machine's definition (Amazon States Language), built once for CDK and the local stack.

Plain Python with no CDK import, so the local stack runs exactly the JSON that
`cdk synth` puts in the template: the CDK construct passes function and topic
ARNs (tokens there), the local stack passes moto's ARNs.

prepare -> train (export + parity inside) -> evaluate (candidate and live on the same holdout,
decision written to S3) -> gate -> register -> promote (or, with `retrain.rollout` shadow or
canary, start the candidate's rollout, stage/workflows/rollout.py) -> notify. Transient Lambda errors are
retried with exponential backoff; any other failure is caught, notified, and ends the
execution as failed before the live pointer moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from functions.core.layout import CHANNEL_MANIFEST_FILE, RETRAIN_RUNS_PREFIX, SAGEMAKER_OUTPUT_PREFIX

# Errors worth another attempt: Lambda's own throttling/service faults and S3/SSM throttling
# surfacing from a step. A step's logic errors (bad data, parity refused) are not retried.
TRANSIENT_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "ThrottlingException",
    "SlowDown",
)
FAILED_STATE = "RetrainFailed"
# A notification's result goes beside the run's output, never over it. `"ResultPath": None` (discard)
# would say the same, but CDK drops nulls when it serialises the stack, so AWS would receive no
# ResultPath at all and replace the output with SNS's answer.
KEEP_OUTPUT = {"ResultSelector": {"message_id.$": "$.MessageId"}, "ResultPath": "$.notification"}


@dataclass(frozen=True, kw_only=True)
class RetrainSteps:
    """Where each state's work runs."""

    prepare: str
    train: str
    evaluate: str
    register: str
    promote: str
    notify_topic: str
    # The function that starts the candidate's rollout (functions.rollout.handler.launch_handler), when the
    # stage's `retrain.rollout` is shadow or canary; without it, Register goes straight to Promote.
    launch_rollout: str | None = None
    # `retrain.rollout: manual`: a candidate that passes the gate is registered, and a person is asked to promote it.
    manual_promotion: bool = False
    # Engine 'sagemaker': the function that checks and stores the training job's candidate (steps.collect).
    collect: str | None = None


@dataclass(frozen=True, kw_only=True)
class SageMakerTraining:
    """The managed training engine: a SageMaker training job run by the state machine (`.sync`), in script mode."""

    image_uri: str
    role_arn: str
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int
    bucket: str
    source_uri: str  # the job's source archive (s3://.../...tar.gz), infra/sagemaker.py
    entry_point: str
    region: str
    recipe: str
    code_revision: str | None = None


# A job waits for its instance and image before it runs: the Train state allows this on top of its runtime.
SAGEMAKER_STARTUP_SECONDS = 900


def retry_transient(max_attempts: int, interval_seconds: int) -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": list(TRANSIENT_ERRORS),
            "IntervalSeconds": interval_seconds,
            "MaxAttempts": max_attempts,
            "BackoffRate": 2.0,
        }
    ]


def catch_all(next_state: str) -> list[dict[str, Any]]:
    """Any error, kept in $.error, leads to `next_state`."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": next_state}]


def _catch() -> list[dict[str, Any]]:
    return catch_all("NotifyFailure")


def lambda_task(
    function: str,
    parameters: dict[str, Any],
    result_path: str,
    next_state: str,
    *,
    timeout: int,
    retry: list[Any],
    on_error: str = "NotifyFailure",
) -> dict[str, Any]:
    """A Task state invoking `function` with `parameters`; its result at `result_path`, any error to `on_error`."""
    return {
        "Type": "Task",
        "Resource": function,
        "Parameters": parameters,
        "ResultPath": result_path,
        "TimeoutSeconds": timeout,
        "Retry": retry,
        "Catch": catch_all(on_error),
        "Next": next_state,
    }


def notify_task(topic: str, subject: str, message: str, *, timeout: int, retry: list[Any]) -> dict[str, Any]:
    """A Task state publishing `message` (a States expression) to `topic`, SNS's answer kept beside the output."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Subject": subject, "Message.$": message},
        **KEEP_OUTPUT,
        "TimeoutSeconds": timeout,
        "Retry": retry,
    }


def _sagemaker_train(sagemaker: SageMakerTraining, retry: list[Any]) -> dict[str, Any]:
    """Train in a SageMaker job: script mode runs the same `steps.train` on the run's table (docs/retrain.md)."""
    hyperparameters = {
        # Script mode: the container fetches the archive, installs its requirements.txt and runs the entry point.
        "sagemaker_program": sagemaker.entry_point,
        "sagemaker_submit_directory": sagemaker.source_uri,
        "sagemaker_region": sagemaker.region,
        "data.$": "States.JsonToString($.data)",
        "recipe": sagemaker.recipe,
        **({"code_revision": sagemaker.code_revision} if sagemaker.code_revision else {}),
    }
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$.data.run_id",
            "AlgorithmSpecification": {"TrainingImage": sagemaker.image_uri, "TrainingInputMode": "File"},
            "RoleArn": sagemaker.role_arn,
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        # The run's snapshot record and every object it names, each at its own key under
                        # the channel (the manifest Prepare writes): the Lambda engine's exact input.
                        "S3DataSource": {
                            "S3DataType": "ManifestFile",
                            "S3Uri.$": (
                                f"States.Format('s3://{sagemaker.bucket}/{RETRAIN_RUNS_PREFIX}{{}}/"
                                f"{CHANNEL_MANIFEST_FILE}', $.data.run_id)"
                            ),
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{sagemaker.bucket}/{SAGEMAKER_OUTPUT_PREFIX}"},
            "ResourceConfig": {
                "InstanceType": sagemaker.instance_type,
                "InstanceCount": sagemaker.instance_count,
                "VolumeSizeInGB": sagemaker.volume_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": sagemaker.max_runtime_seconds},
        },
        # The job leaves the bundle and `candidate.json` in <output>/<job>/output/model.tar.gz;
        # CollectCandidate checks them and stores the candidate where Evaluate reads it.
        "ResultSelector": {"training_job.$": "$.TrainingJobName"},
        "ResultPath": "$.training_job",
        "TimeoutSeconds": sagemaker.max_runtime_seconds + SAGEMAKER_STARTUP_SECONDS,
        "Retry": retry,
        "Catch": _catch(),
        "Next": "CollectCandidate",
    }


def _after_register(steps: RetrainSteps) -> str:
    """Where a registered candidate goes: to a person (manual), its rollout, or straight to Promote."""
    if steps.manual_promotion:
        return "RequestApproval"
    return "Promote" if steps.launch_rollout is None else "StartRollout"


def _start_rollout(steps: RetrainSteps, step: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The StartRollout state when the stage rolls candidates out (the rollout then decides and notifies)."""
    if steps.launch_rollout is None:
        return {}
    parameters = {
        "version.$": "$.decision.candidate_version",
        "reason.$": "States.Format('retrain {} ({})', $.data.run_id, $.data.reason)",
    }
    return {"StartRollout": step(steps.launch_rollout, parameters, "$.rollout", "NotifyOutcome")}


def retrain_definition(
    steps: RetrainSteps,
    *,
    train_timeout_seconds: int,
    step_timeout_seconds: int,
    retry_attempts: int = 3,
    retry_interval_seconds: int = 2,
    sagemaker: SageMakerTraining | None = None,
) -> dict[str, Any]:
    """The state machine's definition as a JSON-ready dict."""
    retry = retry_transient(retry_attempts, retry_interval_seconds)
    step = partial(lambda_task, timeout=step_timeout_seconds, retry=retry)
    notify = partial(notify_task, steps.notify_topic, timeout=step_timeout_seconds, retry=retry)
    training: dict[str, Any]
    if sagemaker is None:
        training = {
            "Train": lambda_task(
                steps.train, {"data.$": "$.data"}, "$.candidate", "Evaluate", timeout=train_timeout_seconds, retry=retry
            )
        }
    else:
        if steps.collect is None:
            raise ValueError("engine 'sagemaker' needs the collect step's function")
        train_timeout_seconds = sagemaker.max_runtime_seconds + SAGEMAKER_STARTUP_SECONDS
        training = {
            "Train": _sagemaker_train(sagemaker, retry),
            "CollectCandidate": step(
                steps.collect,
                {"data.$": "$.data", "training_job.$": "$.training_job.training_job"},
                "$.candidate",
                "Evaluate",
            ),
        }
    return {
        "Comment": "Slipway retrain: prepare, train + parity, evaluate vs live, gate, register, promote, notify",
        "StartAt": "Prepare",
        "TimeoutSeconds": train_timeout_seconds + (6 + len(training) - 1) * step_timeout_seconds,
        "States": {
            "Prepare": step(
                steps.prepare, {"run_id.$": "$$.Execution.Name", "reason.$": "$.reason"}, "$.data", "Train"
            ),
            **training,
            "Evaluate": step(steps.evaluate, {"data.$": "$.data", "candidate.$": "$.candidate"}, "$.decision", "Gate"),
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.decision.verdict", "StringEquals": "promote", "Next": "Register"}],
                "Default": "NotifyOutcome",
            },
            "Register": step(
                steps.register, {"version.$": "$.decision.candidate_version"}, "$.registered", _after_register(steps)
            ),
            **_start_rollout(steps, step),
            "Promote": step(
                steps.promote,
                {
                    "version.$": "$.decision.candidate_version",
                    "reason.$": "States.Format('retrain {} ({})', $.data.run_id, $.data.reason)",
                },
                "$.promoted",
                "NotifyOutcome",
            ),
            "RequestApproval": {
                **notify(
                    "Slipway retrain: a candidate passed the gate and awaits approval",
                    "States.Format('Candidate {} passed the gate and is registered; the live model is "
                    "unchanged. To put it live: slipway promote {}. The gate decision: {}', "
                    "$.decision.candidate_version, $.decision.candidate_version, States.JsonToString($.decision))",
                ),
                "Catch": _catch(),
                "End": True,
            },
            "NotifyOutcome": {
                **notify("Slipway retrain finished", "States.JsonToString($.decision)"),
                "Catch": _catch(),
                "End": True,
            },
            "NotifyFailure": {
                **notify("Slipway retrain failed; the live model is unchanged", "States.JsonToString($.error)"),
                "Next": FAILED_STATE,
            },
            FAILED_STATE: {"Type": "Fail", "Error": "RetrainFailed", "Cause": "a step failed; see NotifyFailure"},
        },
    }
