"""Run Amazon States Language definitions locally: moto's Step Functions backend, the project's own handlers.

moto executes a state machine definition when its config says
`{"stepfunctions": {"execute_state_machine": True}}`, and its Task states call
Lambda through moto's Lambda API. With `{"lambda": {"use_docker": False}}` that
API's `invoke` only echoes the payload; this module replaces it, in this
process, with a dispatch to Python handlers registered by function name. So
the very definition the CDK app synthesizes runs here against the real step
code, with Retry, Catch, Choice, Map and Parallel evaluated by moto.

API:

    runner = LocalStepFunctions(region="us-east-1")          # inside mock_aws() or with a moto server up
    arn = runner.register("slipway-dev-train", handler)      # handler(event: dict, context) -> JSON-able
    machine = runner.create_state_machine("slipway-dev-retrain", definition)  # dict or JSON string
    result = runner.run(machine, {"reason": "manual"})       # start + wait
    result.status, result.output, result.error, result.cause
    runner.close()                                            # or `with contextlib.closing(runner):`

A handler that raises makes the invocation fail as Lambda would: the error
name seen by Retry/Catch is the exception's class name, the cause is a JSON
object with `errorType` and `errorMessage`. `register` returns the function's
ARN; references to it in a definition (ARN, ARN with alias, or bare name, as a
`Resource` or as the `FunctionName` of `arn:aws:states:::lambda:invoke`) reach
the handler. Works with in-process `mock_aws()` and with a `ThreadedMotoServer`
in this process (then `MOTO_PORT` is set to the server's port, because moto's
Step Functions backend calls Lambda through `localhost:$MOTO_PORT`).
"""

from __future__ import annotations

import json
import os
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any, cast

import boto3
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.models import default_user_config

from slipway.executions import ExecutionResult, wait_for_execution
from slipway.local.lambda_runtime import FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

# Settings that make moto execute definitions and keep Lambda in-process.
MOTO_CONFIG: dict[str, dict[str, bool]] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
# moto requires an existing role that Lambda can assume; nothing checks what it allows.
_LOCAL_ROLE_NAME = "slipway-local-states"
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}
_handlers: dict[str, Handler] = {}
_lock = threading.Lock()
_original_invoke = LambdaSimpleBackend.invoke


def _function_name(reference: str) -> str:
    """'arn:aws:lambda:r:a:function:name[:alias]' or 'name' -> 'name'."""
    if reference.startswith("arn:"):
        return reference.split(":")[6]
    return reference


def _dispatching_invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    handler = _handlers.get(_function_name(function_name))
    if handler is None:
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    event = json.loads(body) if body else {}
    try:
        result = handler(event, FakeLambdaContext(function_name=_function_name(function_name)))
    except Exception as exc:  # a Lambda function's unhandled error, reported as Lambda reports it
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception_only(exc),
            }
        ).encode()
    return json.dumps(result, default=str).encode()


def install_dispatch() -> None:
    """Route moto's Docker-free Lambda invocations to the registered handlers (idempotent)."""
    with _lock:
        LambdaSimpleBackend.invoke = _dispatching_invoke  # type: ignore[method-assign]
        config = cast(dict[str, dict[str, bool]], default_user_config)
        for service, values in MOTO_CONFIG.items():
            config.setdefault(service, {}).update(values)


class LocalStepFunctions:
    """Registers handlers as Lambda functions in moto and runs state machines that call them."""

    def __init__(self, *, region: str, poll_seconds: float = 0.02) -> None:
        self.region = region
        self.poll_seconds = poll_seconds
        self._registered: list[str] = []
        install_dispatch()
        self._lambda = boto3.client("lambda", region_name=region)
        self._states = boto3.client("stepfunctions", region_name=region)
        self._account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        self.role_arn = self._local_role()
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # a moto server: its Step Functions backend calls Lambda on localhost:$MOTO_PORT
            os.environ["MOTO_PORT"] = endpoint.rstrip("/").rsplit(":", 1)[-1]

    def _local_role(self) -> str:
        iam = boto3.client("iam", region_name=self.region)
        try:
            return str(iam.get_role(RoleName=_LOCAL_ROLE_NAME)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            created = iam.create_role(RoleName=_LOCAL_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST))
            return str(created["Role"]["Arn"])

    def register(self, function_name: str, handler: Handler, environment: dict[str, str] | None = None) -> str:
        """Create (or reuse) `function_name` in moto and route its invocations to `handler`; return its ARN.

        `environment` is stored as the function's configuration, as CloudFormation would (the handler runs
        in this process with the stack's environment): what a client reads back to learn how it was set up.
        """
        with _lock:
            _handlers[function_name] = handler
        self._registered.append(function_name)
        try:
            return str(self._lambda.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"])
        except self._lambda.exceptions.ResourceNotFoundException:
            pass
        created = self._lambda.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler="handler.lambda_handler",
            Code={"ZipFile": b"dispatched in-process"},
            Environment={"Variables": environment or {}},
        )
        return str(created["FunctionArn"])

    def function_arn(self, function_name: str) -> str:
        """The ARN moto gives `function_name` (what a definition names as a Resource)."""
        return f"arn:aws:lambda:{self.region}:{self._account}:function:{function_name}"

    def create_state_machine(self, name: str, definition: str | dict[str, Any]) -> str:
        """Create the state machine (or replace the definition of an existing one); return its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        existing = {m["name"]: m["stateMachineArn"] for m in self._states.list_state_machines()["stateMachines"]}
        if name in existing:
            self._states.update_state_machine(stateMachineArn=existing[name], definition=text)
            return str(existing[name])
        created = self._states.create_state_machine(name=name, definition=text, roleArn=self.role_arn)
        return str(created["stateMachineArn"])

    def start(self, state_machine_arn: str, execution_input: dict[str, Any], *, name: str | None = None) -> str:
        """Start an execution; return its ARN."""
        started = self._states.start_execution(
            stateMachineArn=state_machine_arn,
            name=name or uuid.uuid4().hex,
            input=json.dumps(execution_input, default=str),
        )
        return str(started["executionArn"])

    def wait(self, execution_arn: str, *, timeout_seconds: float = 300.0) -> ExecutionResult:
        """Poll until the execution ends; raise StateMachineError if it has not after `timeout_seconds`."""
        return wait_for_execution(
            self._states, execution_arn, timeout_seconds=timeout_seconds, poll_seconds=self.poll_seconds
        )

    def run(
        self, state_machine_arn: str, execution_input: dict[str, Any], *, timeout_seconds: float = 300.0
    ) -> ExecutionResult:
        """Start an execution and wait for its end."""
        return self.wait(self.start(state_machine_arn, execution_input), timeout_seconds=timeout_seconds)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's events, oldest first (which states ran, retries, failures)."""
        return list(self._states.get_execution_history(executionArn=execution_arn)["events"])

    def close(self) -> None:
        """Forget the handlers this runner registered."""
        with _lock:
            for function_name in self._registered:
                _handlers.pop(function_name, None)
        self._registered.clear()
