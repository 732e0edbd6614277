"""The batch scoring state machine, as one Amazon States Language document for CDK and the local stack.

    Plan (Lambda: the delta as a manifest in S3)
      -> AnyWork? (Choice: nothing new or changed -> Done)
      -> ScoreObjects (Distributed Map: ItemReader over the manifest, one child
         execution per object, each invoking the scoring Lambda with retries;
         ResultWriter to S3)
      -> Done

moto's Step Functions executor runs this very document, Distributed Map
included: ItemReader reads the manifest from (moto's) S3 and each item is
scored by the registered handler. One difference: moto's ResultWriter writes
only the run's manifest.json, with empty result-file lists, where AWS also
writes the SUCCEEDED/FAILED result files; nothing here reads them.
"""

from __future__ import annotations

from typing import Any

from functions.core import layout
from functions.core.errors import MalformedEvent

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_RETRY_LAMBDA_ERRORS = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
_RETRY_ANY = {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2}
# An item that is not a BatchItem fails the same way on every attempt: no retry. Retriers are
# tried in order, so this one comes before _RETRY_ANY.
_NEVER_RETRY_MALFORMED = {"ErrorEquals": [MalformedEvent.__name__], "MaxAttempts": 0}


def _invoke(function: str, payload: str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function, "Payload.$": payload},
        "ResultSelector": {"result.$": "$.Payload"},
        "Retry": [_RETRY_LAMBDA_ERRORS],
        **fields,
    }


def batch_definition(*, plan_function: str, score_function: str, bucket: str, max_concurrency: int) -> dict[str, Any]:
    """The state machine; `plan_function`/`score_function` are function ARNs (or names locally)."""
    score = _invoke(score_function, "$", End=True)
    score["Retry"] = [_RETRY_LAMBDA_ERRORS, _NEVER_RETRY_MALFORMED, _RETRY_ANY]
    score["OutputPath"] = "$.result"
    score_map: dict[str, Any] = {
        "Type": "Map",
        "MaxConcurrency": max_concurrency,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "ScoreObject",
            "States": {"ScoreObject": score},
        },
        "ItemSelector": {"item.$": "$$.Map.Item.Value"},
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": bucket, "Key.$": "$.plan.result.manifest_key"},
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": bucket, "Prefix": f"{layout.BATCH_RUNS_PREFIX}results"},
        },
        "ResultPath": "$.scored",
        "Next": "Done",
    }
    # The processor receives {"item": {...}}; its payload is the item itself.
    score["Parameters"]["Payload.$"] = "$.item"
    states: dict[str, Any] = {
        "Plan": _invoke(plan_function, "$", ResultPath="$.plan", Next="AnyWork"),
        "AnyWork": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.plan.result.count", "NumericGreaterThan": 0, "Next": "ScoreObjects"}],
            "Default": "Done",
        },
        "ScoreObjects": score_map,
        "Done": {"Type": "Succeed"},
    }
    return {
        "Comment": "Batch scoring: the delta of an S3 prefix, scored object by object with the live model",
        "StartAt": "Plan",
        "States": states,
    }
