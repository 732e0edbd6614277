"""Each Lambda function of a synthesized template as moto sees it: its resources, its role, its calls.

`TemplateNames` resolves the template's intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub,
Fn::Select, Fn::Split and the pseudo parameters) to the concrete names and ARNs moto
uses. `lambda_functions` lists every Python function with the exact policy documents
its role gets and what the Lambda service itself does with that role (logs, traces,
event source polling, failure destinations). `provision` creates in moto the
resources those roles name; `role_credentials` creates the role there, with exactly
those documents, and assumes it. `moto_names_resources` makes moto authorize SSM, SNS,
Step Functions and EventBridge calls against their resource ARN, as it already does for
S3 and SQS. `CallRecorder` records every call botocore makes while a function runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.handlers import BUILTIN_HANDLERS
from iam_evaluation import Call, Request, event_bus_arn, parameter_arn
from moto.cloudwatch.responses import CloudWatchResponse
from moto.events.responses import EventsHandler
from moto.iam.access_control import IAMRequestBase
from moto.sns.responses import SNSResponse
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.stepfunctions.responses import StepFunctionResponse


class TemplateNames:
    """Concrete values of a template's intrinsics, for one account and region."""

    def __init__(
        self, template: Mapping[str, Any], *, account: str, region: str, known: Mapping[str, str] | None = None
    ) -> None:
        self.resources: Mapping[str, Any] = template["Resources"]
        self.account, self.region = account, region
        # Values CloudFormation would generate (a key id), by "LogicalId" for Ref or "LogicalId.Attr".
        self.known = dict(known or {})
        self._pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
                        "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack"}  # fmt: skip

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic replaced by its concrete value (dicts and lists walked)."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, argument)] = value.items()
            if name == "Ref":
                return self._pseudo.get(argument) or self.ref(argument)
            if name == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.attribute(logical_id, attribute)
            if name == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(part)) for part in self.resolve(parts))
            if name == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if name == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if name == "Fn::Sub":
                return self._sub(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def ref(self, logical_id: str) -> str:
        if logical_id in self.known:
            return self.known[logical_id]
        kind, props = self._resource(logical_id)
        named = {
            "AWS::S3::Bucket": lambda: self.resolve(props["BucketName"]),
            "AWS::SSM::Parameter": lambda: self.resolve(props["Name"]),
            "AWS::SQS::Queue": lambda: self._queue_url(props),
            "AWS::SNS::Topic": lambda: self._arn("sns", self.resolve(props["TopicName"])),
            "AWS::StepFunctions::StateMachine": lambda: self._arn(
                "states", f"stateMachine:{self.resolve(props['StateMachineName'])}"
            ),
            "AWS::Lambda::Function": lambda: self.resolve(props["FunctionName"]),
            "AWS::Logs::LogGroup": lambda: self.resolve(props["LogGroupName"]),
            "AWS::IAM::Role": lambda: self.resolve(props.get("RoleName", logical_id)),
            # An alarm without a name gets one from CloudFormation: its logical id stands in for it.
            "AWS::CloudWatch::Alarm": lambda: self.resolve(props.get("AlarmName", logical_id)),
        }
        if kind not in named:
            raise LookupError(f"Ref {logical_id} ({kind}): no concrete value modelled; pass it in `known`")
        return str(named[kind]())

    def attribute(self, logical_id: str, attribute: str) -> str:
        if f"{logical_id}.{attribute}" in self.known:
            return self.known[f"{logical_id}.{attribute}"]
        kind, props = self._resource(logical_id)
        if attribute == "Arn":
            arns: dict[str, Callable[[], str]] = {
                "AWS::S3::Bucket": lambda: f"arn:aws:s3:::{self.ref(logical_id)}",
                "AWS::SQS::Queue": lambda: self._arn("sqs", self.resolve(props["QueueName"])),
                "AWS::SNS::Topic": lambda: self.ref(logical_id),
                "AWS::StepFunctions::StateMachine": lambda: self.ref(logical_id),
                "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{self.ref(logical_id)}"),
                "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{self.ref(logical_id)}:*"),
                "AWS::IAM::Role": lambda: f"arn:aws:iam::{self.account}:role/{self.ref(logical_id)}",
                "AWS::KMS::Key": lambda: self._arn("kms", f"key/{self.ref(logical_id)}"),
                "AWS::CloudWatch::Alarm": lambda: self._arn("cloudwatch", f"alarm:{self.ref(logical_id)}"),
            }
            if kind in arns:
                return arns[kind]()
        raise LookupError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}): not modelled; pass it in `known`")

    def _resource(self, logical_id: str) -> tuple[str, Mapping[str, Any]]:
        resource = self.resources[logical_id]
        return resource["Type"], resource.get("Properties", {})

    def _arn(self, service: str, rest: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{rest}"

    def _queue_url(self, props: Mapping[str, Any]) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.resolve(props['QueueName'])}"

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        for name, value in variables.items():
            text = text.replace(f"${{{name}}}", str(self.resolve(value)))
        while "${" in text:
            start = text.index("${")
            name = text[start + 2 : text.index("}", start)]
            value = self.resolve({"Fn::GetAtt": name} if "." in name else {"Ref": name})
            text = text.replace(f"${{{name}}}", str(value))
        return text


@dataclass(frozen=True)
class LambdaFunction:
    """One Python function of the template, with its role's exact policies, all intrinsics resolved."""

    logical_id: str
    name: str
    handler: str
    role: str
    environment: dict[str, str]
    documents: list[dict[str, Any]]
    # What the Lambda service does with the role on the function's behalf (never a call of its code).
    platform: list[Request] = field(default_factory=list)


def lambda_functions(template: Mapping[str, Any], names: TemplateNames) -> dict[str, LambdaFunction]:
    """Every Python Lambda function of `template`, by handler."""
    resources = template["Resources"]
    found = {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Lambda::Function" or not str(props.get("Runtime", "")).startswith("python"):
            continue
        role_id = props["Role"]["Fn::GetAtt"][0]
        function = LambdaFunction(
            logical_id=logical_id,
            name=names.resolve(props["FunctionName"]),
            handler=props["Handler"],
            role=names.ref(role_id),
            environment={k: str(v) for k, v in _variables(names, props).items()},
            documents=names.resolve(_role_documents(resources, role_id)),
            platform=_platform_requests(resources, logical_id, names),
        )
        found[function.handler] = function
    return found


def _variables(names: TemplateNames, props: Mapping[str, Any]) -> dict[str, Any]:
    return dict(names.resolve(props.get("Environment", {}).get("Variables", {})))


def _role_documents(resources: Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    """The role's inline policies and every AWS::IAM::Policy or ManagedPolicy attached to it."""
    role = resources[role_id]["Properties"]
    if role.get("ManagedPolicyArns") or role.get("PermissionsBoundary"):
        raise NotImplementedError(f"{role_id}: managed policy ARNs and boundaries need their documents here")
    documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    for resource in resources.values():
        attached = {"Ref": role_id} in resource.get("Properties", {}).get("Roles", [])
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and attached:
            documents.append(resource["Properties"]["PolicyDocument"])
    return documents


# What the Lambda service needs of an execution role for an SQS event source and a failure
# destination (AWS Lambda developer guide: "Using Lambda with Amazon SQS", "Destinations").
SQS_POLLING = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
DESTINATION_ACTION = {"sqs": "sqs:SendMessage", "sns": "sns:Publish", "lambda": "lambda:InvokeFunction",
                      "events": "events:PutEvents"}  # fmt: skip


def _platform_requests(resources: Mapping[str, Any], function_id: str, names: TemplateNames) -> list[Request]:
    props = resources[function_id]["Properties"]
    default_group = f"/aws/lambda/{names.resolve(props['FunctionName'])}"
    group = names.resolve(props.get("LoggingConfig", {}).get("LogGroup", default_group))
    stream = f"arn:aws:logs:{names.region}:{names.account}:log-group:{group}:log-stream:2026/01/01/[$LATEST]0"
    found = [Request("logs:CreateLogStream", stream), Request("logs:PutLogEvents", stream)]
    if props.get("TracingConfig", {}).get("Mode") == "Active":
        found += [Request("xray:PutTraceSegments", "*"), Request("xray:PutTelemetryRecords", "*")]
    if "DeadLetterConfig" in props:
        target = names.resolve(props["DeadLetterConfig"]["TargetArn"])
        found.append(Request(DESTINATION_ACTION[target.split(":")[2]], target))
    for resource in resources.values():
        other = resource.get("Properties", {})
        if other.get("FunctionName") != {"Ref": function_id}:
            continue
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            source = names.resolve(other["EventSourceArn"])
            if source.split(":")[2] != "sqs":
                raise NotImplementedError(f"event source {source}: add what Lambda needs of the role to poll it")
            found += [Request(action, source) for action in SQS_POLLING]
        elif resource["Type"] == "AWS::Lambda::EventInvokeConfig":
            for outcome in other.get("DestinationConfig", {}).values():
                target = names.resolve(outcome["Destination"])
                found.append(Request(DESTINATION_ACTION[target.split(":")[2]], target))
    return found


def encrypted_topics(template: Mapping[str, Any], names: TemplateNames) -> dict[str, str]:
    """The KMS key ARN of each topic encrypted with one, by topic ARN (publishing uses the key)."""
    return {
        names.ref(logical_id): names.resolve(resource["Properties"]["KmsMasterKeyId"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in resource.get("Properties", {})
    }


# -- moto ------------------------------------------------------------------------------


def provision(template: Mapping[str, Any], *, account: str, region: str) -> TemplateNames:
    """Create in moto the template's buckets, parameters, queues, KMS keys, topics and state machines."""
    resources = template["Resources"]
    known: dict[str, str] = {}
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append(logical_id)
    for logical_id in by_type.get("AWS::KMS::Key", []):
        known[logical_id] = boto3.client("kms", region_name=region).create_key()["KeyMetadata"]["KeyId"]
    names = TemplateNames(template, account=account, region=region, known=known)
    for logical_id in by_type.get("AWS::S3::Bucket", []):
        boto3.client("s3", region_name=region).create_bucket(Bucket=names.ref(logical_id))
    for logical_id in by_type.get("AWS::SSM::Parameter", []):
        props = resources[logical_id]["Properties"]
        boto3.client("ssm", region_name=region).put_parameter(
            Name=names.ref(logical_id), Value=names.resolve(props["Value"]), Type=props["Type"]
        )
    for logical_id in by_type.get("AWS::SQS::Queue", []):
        queue = names.resolve(resources[logical_id]["Properties"]["QueueName"])
        boto3.client("sqs", region_name=region).create_queue(QueueName=queue)
    for logical_id in by_type.get("AWS::SNS::Topic", []):
        props = resources[logical_id]["Properties"]
        attributes = {"KmsMasterKeyId": names.resolve(props["KmsMasterKeyId"])} if "KmsMasterKeyId" in props else {}
        topic = names.resolve(props["TopicName"])
        boto3.client("sns", region_name=region).create_topic(Name=topic, Attributes=attributes)
    for logical_id in by_type.get("AWS::StepFunctions::StateMachine", []):
        boto3.client("stepfunctions", region_name=region).create_state_machine(
            name=names.resolve(resources[logical_id]["Properties"]["StateMachineName"]),
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{account}:role/state-machine",
        )
    return names


def role_credentials(function: LambdaFunction, *, account: str, region: str) -> dict[str, str]:
    """Create the function's role in moto with exactly its documents, assume it, return the session's keys."""
    iam = boto3.client("iam", region_name=region)
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    iam.create_role(RoleName=function.role, AssumeRolePolicyDocument=json.dumps(trust))
    for index, document in enumerate(function.documents):
        iam.put_role_policy(RoleName=function.role, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{function.role}", RoleSessionName=function.name[:64]
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def _parameter(self: Any) -> str:
    name = self._get_param("Name")
    return parameter_arn(name, region=self.region, account=self.current_account) if name else "*"


def _topic(self: Any) -> str:
    return str(self._get_param("TopicArn") or self._get_param("TargetArn") or "*")


def _state_machine(self: Any) -> str:
    return str(self._get_param("stateMachineArn") or self._get_param("executionArn") or "*")


def _event_bus(self: Any) -> str:
    entries = self._get_param("Entries") or [{}]
    bus = entries[0].get("EventBusName", "default")
    return event_bus_arn(bus, region=self.region, account=self.current_account)


def _alarm(self: Any) -> str:
    names = self._get_multi_param("AlarmNames.member") if hasattr(self, "_get_multi_param") else []
    if not names:
        names = self._get_param("AlarmNames") or []
    return f"arn:aws:cloudwatch:{self.region}:{self.current_account}:alarm:{names[0]}" if names else "*"


_RESOURCE_OF: dict[Any, Callable[[Any], str]] = {
    CloudWatchResponse: _alarm,
    SimpleSystemManagerResponse: _parameter,
    SNSResponse: _topic,
    StepFunctionResponse: _state_machine,
    EventsHandler: _event_bus,
}


@contextmanager
def moto_names_resources() -> Iterator[None]:
    """Make moto authorize SSM, SNS, Step Functions, EventBridge and CloudWatch alarm calls against their resource.

    moto checks these services' actions against Resource "*" unless its response class
    names the resource through `_determine_resource` (the hook its SQS responses use); a
    statement scoped to one parameter or topic would then never match. moto also names
    CloudWatch's actions after its signing name (monitoring:DescribeAlarms), where IAM
    says cloudwatch:DescribeAlarms; the action is renamed as IAM spells it.
    """
    original_init = IAMRequestBase.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self._action.startswith("monitoring:"):
            self._action = "cloudwatch:" + self._action.removeprefix("monitoring:")

    IAMRequestBase.__init__ = init  # type: ignore[method-assign]
    for response, resource_of in _RESOURCE_OF.items():
        response._determine_resource = resource_of
    try:
        yield
    finally:
        IAMRequestBase.__init__ = original_init  # type: ignore[method-assign]
        for response in _RESOURCE_OF:
            delattr(response, "_determine_resource")


class CallRecorder:
    """Records, under the label of the open `recording`, every call a botocore client makes.

    Its hooks join botocore's built-in handlers while `installed`, so every session made
    meanwhile has them, whoever makes it (boto3's default session, or code's own).
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[Call]] = {}
        self._label: str | None = None
        self._hooks = [("before-parameter-build", _keep_params), ("after-call", self._answer)]

    @contextmanager
    def installed(self) -> Iterator[CallRecorder]:
        BUILTIN_HANDLERS.extend(self._hooks)
        try:
            yield self
        finally:
            for hook in self._hooks:
                BUILTIN_HANDLERS.remove(hook)

    @contextmanager
    def recording(self, label: str) -> Iterator[list[Call]]:
        self._label = label
        try:
            yield self.calls.setdefault(label, [])
        finally:
            self._label = None

    def _answer(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if self._label is None:
            return
        self.calls[self._label].append(
            Call(
                service=model.service_model.signing_name,
                operation=model.name,
                params=context.get("least_privilege_params", {}),
                region=context.get("client_region") or "",
                status=http_response.status_code,
                error=parsed.get("Error", {}).get("Code"),
            )
        )


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["least_privilege_params"] = dict(params)
