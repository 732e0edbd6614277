"""What an AWS API call asks IAM for, and whether identity policies allow it.

`requests_of` turns one recorded call (service, operation, parameters, HTTP status)
into the IAM requests AWS authorizes for it: action, resource ARN and condition keys.
`allows` evaluates identity policy documents the way IAM does for one principal in
its own account: an explicit Deny wins, otherwise some Allow must match the action,
the resource and every condition. Only what the project's policies use is modelled;
anything else raises, so a new operation or condition operator cannot pass unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class Call:
    """One API call as boto3 made it: the service's signing name, operation, parameters, answer."""

    service: str
    operation: str
    params: Mapping[str, Any]
    region: str
    status: int = 200
    error: str | None = None

    @property
    def denied(self) -> bool:
        return self.status == 403

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k in _SHOWN_PARAMS}
        return f"{self.service}:{self.operation} {shown} -> {self.status} {self.error or ''}".rstrip()


_SHOWN_PARAMS = {"Bucket", "Key", "Prefix", "Name", "QueueUrl", "TopicArn", "stateMachineArn"}


@dataclass(frozen=True)
class Request:
    """One authorization request: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        context = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{context}"


def requests_of(call: Call, *, account: str) -> list[Request]:
    """The IAM requests AWS makes for `call` (LookupError for an operation not modelled here)."""
    p, region = call.params, call.region
    match call.service, call.operation:
        case "s3", "GetObject" | "HeadObject":
            found = [Request("s3:GetObject", _object(p["Bucket"], p["Key"]))]
            if call.status == 404:
                # S3 answers a missing key with 404 only to a caller who may list the bucket, 403 otherwise.
                # AWS does not document which s3:prefix that check sees; infra.grants assumes the key, so a
                # listing grant limited to the key's prefix is enough. Drop the context to assume none.
                found.append(Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", {"s3:prefix": p["Key"]}))
            return found
        case "s3", "PutObject" | "DeleteObject" | "AbortMultipartUpload":
            return [Request(f"s3:{call.operation}", _object(p["Bucket"], p["Key"]))]
        case "s3", "ListObjectsV2" | "ListObjects":
            context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
            return [Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", context)]
        case "ssm", "GetParameter" | "PutParameter" | "DeleteParameter" | "GetParameterHistory":
            return [Request(f"ssm:{call.operation}", parameter_arn(p["Name"], region=region, account=account))]
        case "sqs", "SendMessage" | "SendMessageBatch" | "ReceiveMessage" | "DeleteMessage" | "GetQueueAttributes":
            return [Request(f"sqs:{call.operation}", queue_arn(p["QueueUrl"], region=region))]
        case "sns", "Publish":
            return [Request("sns:Publish", p["TopicArn"])]
        case "states", "StartExecution":
            return [Request("states:StartExecution", p["stateMachineArn"])]
        case "events", "PutEvents":
            # One authorization per entry, with its source and detail type as the condition keys.
            return [
                Request(
                    "events:PutEvents",
                    event_bus_arn(entry.get("EventBusName", "default"), region=region, account=account),
                    {"events:source": entry["Source"], "events:detail-type": entry["DetailType"]},
                )
                for entry in p["Entries"]
            ]
        case "monitoring", "DescribeAlarms":
            return [Request("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}")
                    for name in p.get("AlarmNames", ["*"])]  # fmt: skip
        case "monitoring", "PutMetricData":
            return [Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": p["Namespace"]})]
    raise LookupError(
        f"{call.service}:{call.operation} is not modelled in tests/infra/iam_evaluation.py; add the IAM action, "
        "resource and condition keys AWS authorizes it with, so the least-privilege tests can check it"
    )


def parameter_arn(name: str, *, region: str, account: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.removeprefix('/')}"


def queue_arn(url: str, *, region: str) -> str:
    account, name = urlparse(url).path.strip("/").split("/")
    return f"arn:aws:sqs:{region}:{account}:{name}"


def event_bus_arn(bus: str, *, region: str, account: str) -> str:
    return bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}"


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


# -- evaluation ----------------------------------------------------------------------


def statements(documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every statement of `documents`, each with Action and Resource as lists."""
    found = []
    for document in documents:
        for statement in _as_list(document["Statement"]):
            unsupported = {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(statement)
            if unsupported:
                raise NotImplementedError(f"{sorted(unsupported)} in an identity policy: {statement}")
            found.append(
                {**statement, "Action": _as_list(statement["Action"]), "Resource": _as_list(statement["Resource"])}
            )
    return found


def allows(documents: Sequence[Mapping[str, Any]], request: Request, *, conditions: bool = True) -> bool:
    """Whether the policies allow `request` (`conditions=False`: as if no statement had a Condition)."""
    allowed = False
    for statement in statements(documents):
        if not matches(statement, request, conditions=conditions):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def matches(statement: Mapping[str, Any], request: Request, *, conditions: bool = True) -> bool:
    """Whether `statement` applies to `request`: action, resource and (unless told not to) its conditions."""
    return (
        any(_glob(pattern, ignore_case=True).fullmatch(request.action) for pattern in statement["Action"])
        and any(_glob(pattern).fullmatch(request.resource) for pattern in statement["Resource"])
        and (not conditions or _conditions_hold(statement.get("Condition", {}), request.context))
    )


def _conditions_hold(block: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in block.items():
        base, if_exists = operator.removesuffix("IfExists"), operator.endswith("IfExists")
        if base not in _OPERATORS:
            raise NotImplementedError(f"condition operator {operator} is not modelled in tests/infra/iam_evaluation.py")
        for key, expected in tests.items():
            if key not in context:
                if not if_exists:
                    return False
                continue
            if not any(_OPERATORS[base](str(value), context[key]) for value in _as_list(expected)):
                return False
    return True


@cache
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` any one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


_OPERATORS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": lambda expected, actual: bool(_glob(expected).fullmatch(actual)),
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": lambda expected, actual: bool(_glob(expected).fullmatch(actual)),
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
