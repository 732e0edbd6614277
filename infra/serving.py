"""The inference function, its `live` alias and the front door in front of it (the REST API built here)."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.bundling import INFERENCE_PACKAGE
from infra.front_doors import HttpFrontDoor, grant_url_invokers, rest_web_acl
from infra.lambda_function import FunctionDefaults, python_function
from infra.nag import acknowledge
from infra.observability import PERIOD, FrontDoorMetrics
from infra.routes import ROUTES, WRITE_ROUTES
from infra.storage import CAPTURE_EXPIRY_DAYS
from stage.names import ResourceNames
from stage.settings import ApiSettings, InferenceSettings, ProvisionedConcurrencySettings

HANDLER = "functions.inference.handler.lambda_handler"
LIVE_ALIAS = "live"


# One JSON line per request, naming its caller as the front door authenticated it: the IAM principal
# (userArn, caller, user) or the API key id; what labels and capture record as their caller.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "caller": "$context.identity.caller",
        "user": "$context.identity.user", "userArn": "$context.identity.userArn",
        "apiKeyId": "$context.identity.apiKeyId", "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod", "resourcePath": "$context.resourcePath", "status": "$context.status",
        "protocol": "$context.protocol", "responseLength": "$context.responseLength",
    },
    separators=(",", ":"),
)  # fmt: skip


def _api_gateway_metrics(stage: apigw.Stage | apigwv2.HttpStage, *, requests_statistic: str) -> FrontDoorMetrics:
    """An API Gateway stage's requests, errors and p99 latency, REST API or HTTP API alike."""
    return FrontDoorMetrics(
        label="API",
        latency_label="API p99 latency",
        requests=stage.metric_count(statistic=requests_statistic, period=PERIOD),
        server_errors=stage.metric_server_error(statistic="Sum", period=PERIOD),
        client_errors=stage.metric_client_error(statistic="Sum", period=PERIOD),
        latency_p99=stage.metric_latency(statistic="p99", period=PERIOD),
    )


class Serving(Construct):
    """Inference Lambda (alias `live`; autoscaled provisioned concurrency or SnapStart) behind the front door
    `api.type` names: a REST API, an HTTP API or a function URL.

    The function's role starts with only its own logging and tracing rights; the stack
    grants it the rest (infra.grants).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        inference: InferenceSettings,
        provisioned_concurrency: ProvisionedConcurrencySettings,
        api: ApiSettings,
        defaults: FunctionDefaults,
        environment: dict[str, str],
        snap_start: bool,
        protect_log: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        made = python_function(
            self,
            "Function",
            defaults=defaults,
            name=names.inference_function,
            description="Slipway inference: scores rows with the live ONNX model bundle",
            handler=HANDLER,
            code=defaults.code(INFERENCE_PACKAGE),
            memory_mb=inference.memory_mb,
            timeout_seconds=inference.timeout_seconds,
            reserved_concurrency=inference.reserved_concurrency,
            # Its log carries the captured rows (shipped from there to capture/): kept no longer than capture is.
            log_max_days=CAPTURE_EXPIRY_DAYS,
            log_protected=protect_log,
            environment=environment,
            role_description=f"{names.inference_function}: serves the API; its grants are listed in docs/security.md",
            snap_start=snap_start,
        )
        self.function, self.role, self.log_group = made.function, made.role, made.log_group

        self.alias = lambda_.Alias(
            self,
            "LiveAlias",
            alias_name=LIVE_ALIAS,
            version=self.function.current_version,
            provisioned_concurrent_executions=(
                provisioned_concurrency.min if provisioned_concurrency.enabled else None
            ),
        )
        if provisioned_concurrency.enabled:
            self._autoscale(provisioned_concurrency)

        # The front door api.type names; each of rest_api, http_api and function_url is None but that one.
        self.rest_api: apigw.RestApi | None = None
        self.http_api: HttpFrontDoor | None = None
        self.function_url: lambda_.FunctionUrl | None = None
        self.web_acl: wafv2.CfnWebACL | None = None  # rest with api.waf only
        # One key per client, each under its own usage plan; the first is the smoke test's.
        self.api_keys: list[apigw.IApiKey] = []
        if api.type == "rest":
            self.rest_api = self._rest_api(names=names, api=api, defaults=defaults)
            self.url = self.rest_api.url
            if api.keys_required:
                self.api_keys = [
                    self._usage_plan(self.rest_api, names=names, api=api, client=client) for client in api.clients
                ]
            if api.waf:
                self.web_acl = rest_web_acl(
                    self, "WebAcl", names=names, stage_arn=self.rest_api.deployment_stage.stage_arn,
                    rate_limit=api.waf_rate_limit,
                )  # fmt: skip
        elif api.type == "http":
            self.access_log_group = defaults.log_group(self, "ApiAccessLogs")
            self.http_api = HttpFrontDoor(
                self, "Http", names=names, api=api, alias=self.alias, routes=ROUTES,
                access_logs=self.access_log_group,
            )  # fmt: skip
            self.url = self.http_api.url
        else:
            # SigV4 only (service `lambda`), CORS off: machine clients, no browser calls it.
            self.function_url = self.alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
            grant_url_invokers(self.alias, api.invokers)
            self.url = self.function_url.url

    def front_door_metrics(self) -> FrontDoorMetrics:
        """The front door's requests, errors and latency, under the names its type publishes them."""
        if self.rest_api is not None:
            # AWS documents a REST API's Count under its SampleCount statistic.
            return _api_gateway_metrics(self.rest_api.deployment_stage, requests_statistic="SampleCount")
        if self.http_api is not None:
            # AWS/ApiGateway, dimensions ApiId and Stage; metric names Count, 4xx, 5xx, Latency.
            return _api_gateway_metrics(self.http_api.stage, requests_statistic="Sum")
        # A function URL: AWS/Lambda's Url* metrics of the alias (dimensions FunctionName and Resource).

        def url_metric(name: str) -> cloudwatch.Metric:
            return self.alias.metric(name, statistic="Sum", period=PERIOD)

        return FrontDoorMetrics(
            label="Function URL", latency_label="Inference function p99 duration",
            requests=url_metric("UrlRequestCount"), server_errors=url_metric("Url5xxCount"),
            client_errors=url_metric("Url4xxCount"),
            latency_p99=self.alias.metric_duration(statistic="p99", period=PERIOD),
            function_errors=self.alias.metric_errors(statistic="Sum", period=PERIOD),
            function_invocations=self.alias.metric_invocations(statistic="Sum", period=PERIOD),
        )  # fmt: skip

    def _autoscale(self, settings: ProvisionedConcurrencySettings) -> None:
        scaling = self.alias.add_auto_scaling(min_capacity=settings.min, max_capacity=settings.max)
        scaling.scale_on_utilization(utilization_target=settings.target_utilization)
        for scheduled in settings.schedules:
            scaling.scale_on_schedule(
                scheduled.name,
                schedule=appscaling.Schedule.expression(scheduled.schedule),
                min_capacity=scheduled.min,
                max_capacity=scheduled.max,
            )

    def _rest_api(self, *, names: ResourceNames, api: ApiSettings, defaults: FunctionDefaults) -> apigw.RestApi:
        self.access_log_group = defaults.log_group(self, "ApiAccessLogs")
        authorization = apigw.AuthorizationType.IAM if api.auth == "iam" else apigw.AuthorizationType.NONE
        method_options = apigw.MethodOptions(api_key_required=api.keys_required, authorization_type=authorization)
        rest_api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=names.api,
            description="Slipway inference API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway writes execution and access logs through one account-wide role per region.
            # The stack sets it (and keeps it on destroy, other APIs in the account may rely on it).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            default_method_options=method_options,
            policy=_resource_policy(api) if api.auth == "iam" else None,
            deploy_options=apigw.StageOptions(
                stage_name=names.stage,
                # Stage-wide values become the method settings of `/*/*` (every method).
                throttling_rate_limit=api.throttle_rate,
                throttling_burst_limit=api.throttle_burst,
                # Labels and async jobs far below /predict: a burst of them cannot starve scoring.
                method_options={
                    f"/{route.path}/{route.method}": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=api.write_throttle_rate, throttling_burst_limit=api.write_throttle_burst
                    )
                    for route in WRITE_ROUTES
                },
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
                tracing_enabled=True,
                metrics_enabled=True,
                data_trace_enabled=False,
                logging_level=apigw.MethodLoggingLevel.ERROR,
            ),
        )
        # Requests are proxied unchanged. No request model is attached, so the validator checks only
        # declared parameters; the handler validates bodies (pydantic, 422 with field locations) and
        # enforces MAX_BODY_BYTES (API Gateway's own cap of 10 MB cannot be lowered).
        validator = rest_api.add_request_validator(
            "RequestValidator", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(self.alias, proxy=True, allow_test_invoke=False)
        for route in ROUTES:
            resource = rest_api.root.resource_for_path(route.path)
            resource.add_method(route.method, integration, request_validator=validator)

        # An enhanced TLS policy (no CBC ciphers, forward secrecy) needs the STRICT endpoint access mode:
        # a request must name this API's own host (SNI), not arrive through another endpoint type.
        cfn_api = rest_api.node.default_child
        assert isinstance(cfn_api, apigw.CfnRestApi)
        cfn_api.security_policy = api.tls_policy
        cfn_api.endpoint_access_mode = "STRICT"

        account_role = rest_api.node.try_find_child("CloudWatchRole")
        if account_role is not None:
            acknowledge(
                account_role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level role API Gateway assumes to write execution and access logs; "
                "AWS documents this managed policy for it and it grants only CloudWatch Logs writes.",
            )
        if not api.waf:
            acknowledge(
                rest_api,
                "AwsSolutions-APIG3",
                "api.waf is off on this stage (prod turns it on): the stage is throttled stage-wide and on each "
                "write route (api.write_throttle_*), with a usage plan quota in api_key mode; a web ACL costs a "
                "fixed monthly fee per ACL and rule.",
            )
        if api.auth == "api_key":
            for method in rest_api.methods:
                acknowledge(
                    method,
                    "AwsSolutions-APIG4",
                    "api.auth=api_key: every method requires an API key tied to a usage plan with throttle "
                    "and quota; a key identifies, it does not authenticate: prod defaults to api.auth=iam (SigV4).",
                )
        for method in rest_api.methods:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "The API serves machine clients, authenticated by API key or SigV4 (api.auth); "
                "there is no end-user directory, so no Cognito user pool.",
            )
        return rest_api

    def _usage_plan(
        self, rest_api: apigw.RestApi, *, names: ResourceNames, api: ApiSettings, client: str
    ) -> apigw.IApiKey:
        plan = rest_api.add_usage_plan(
            f"UsagePlan-{client}",
            name=f"{names.prefix}-{client}-usage-plan",
            description=f"Throttle and daily quota of client {client}'s key",
            throttle=apigw.ThrottleSettings(rate_limit=api.throttle_rate, burst_limit=api.throttle_burst),
            quota=apigw.QuotaSettings(limit=api.quota_per_day, period=apigw.Period.DAY),
        )
        plan.add_api_stage(stage=rest_api.deployment_stage)
        key = rest_api.add_api_key(
            f"ApiKey-{client}", api_key_name=f"{names.prefix}-{client}", description=f"Inference key of client {client}"
        )
        plan.add_api_key(key)
        return key


def _resource_policy(api: ApiSettings) -> iam.PolicyDocument:
    """Under SigV4: who may call at all (api.invokers, else this account), and who may call the write routes
    (api.writers). The denies make each list exact: an IAM policy elsewhere in the account cannot widen it."""
    everything = ["execute-api:/*"]
    if api.invokers:
        allowed = iam.PolicyStatement(
            principals=[iam.AnyPrincipal()], actions=_INVOKE, resources=everything,
            conditions={"ArnLike": {"aws:PrincipalArn": list(api.invokers)}},
        )  # fmt: skip
        statements = [allowed, _deny_all_but(api.invokers, everything)]
    else:
        statements = [
            iam.PolicyStatement(principals=[iam.AccountRootPrincipal()], actions=_INVOKE, resources=everything)
        ]
    if api.writers is not None:
        statements.append(_deny_all_but(api.writers, [route.execute_api for route in WRITE_ROUTES]))
    return iam.PolicyDocument(statements=statements)


_INVOKE = ["execute-api:Invoke"]


def _deny_all_but(principals: tuple[str, ...], resources: list[str]) -> iam.PolicyStatement:
    """Deny `resources` to every principal but `principals` (ARN patterns); to everyone when there are none."""
    return iam.PolicyStatement(
        effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=_INVOKE, resources=resources,
        conditions={"ArnNotLike": {"aws:PrincipalArn": list(principals)}} if principals else None,
    )  # fmt: skip
