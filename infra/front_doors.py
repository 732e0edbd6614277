"""The front doors other than the REST API (an HTTP API, a function URL) and the REST API's WAF web ACL.

infra.serving builds the one the stage's `api.type` names, always in front of the `live` alias.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.routes import Route
from stage.names import ResourceNames
from stage.settings import ApiSettings

# The HTTP API's one stage: its URL has no stage segment, so paths reach the handler as the routes name them.
HTTP_STAGE = "$default"

# One short JSON line per request (log bytes are billed): who called, as the authorizer saw them, and the outcome.
# No time field: every CloudWatch Logs event carries its own timestamp.
_HTTP_CALLER = {"iam": "$context.identity.userArn", "jwt": "$context.authorizer.claims.sub"}


def http_access_log_format(auth: str) -> str:
    """The HTTP API's access log line under `auth` (iam: the SigV4 principal; jwt: the token's subject)."""
    fields = {
        "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "caller": _HTTP_CALLER[auth],
        "route": "$context.routeKey", "status": "$context.status",
    }  # fmt: skip
    return json.dumps(fields, separators=(",", ":"))


class HttpFrontDoor(Construct):
    """An API Gateway HTTP API: every route to the `live` alias (payload 2.0), IAM or JWT auth, throttled, logged."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        api: ApiSettings,
        alias: lambda_.IFunction,
        routes: Sequence[Route],
        access_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        authorizer: apigwv2.IHttpRouteAuthorizer
        if api.auth == "jwt":
            assert api.jwt_issuer is not None  # the settings require it under jwt
            authorizer = authorizers.HttpJwtAuthorizer(
                "Jwt", api.jwt_issuer, jwt_audience=list(api.jwt_audience), authorizer_name=f"{names.api}-jwt"
            )
        else:
            authorizer = authorizers.HttpIamAuthorizer()
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=names.api,
            description="Slipway inference API",
            create_default_stage=False,
            default_authorizer=authorizer,
        )
        integration = integrations.HttpLambdaIntegration(
            "Live", alias, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
        )
        made: list[apigwv2.HttpRoute] = []
        for route in routes:
            made += self.api.add_routes(
                path=f"/{route.path}", methods=[apigwv2.HttpMethod(route.method)], integration=integration
            )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name=HTTP_STAGE,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=api.throttle_rate, burst_limit=api.throttle_burst),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=http_access_log_format(api.auth)
        )
        # Labels and async jobs far below /predict: a burst of them cannot starve scoring.
        cfn_stage.route_settings = {
            f"{route.method} /{route.path}": {
                "ThrottlingRateLimit": api.write_throttle_rate,
                "ThrottlingBurstLimit": api.write_throttle_burst,
            }
            for route in routes
            if route.writes
        }
        # A stage's route settings name routes, which must exist first.
        for http_route in made:
            self.stage.node.add_dependency(http_route)
        self.url = f"{self.api.api_endpoint}/"


def grant_url_invokers(alias: lambda_.Alias, invokers: Sequence[str]) -> None:
    """Let `invokers` (exact ARNs; none: this account's principals an IAM policy allows) call the alias's URL."""
    principals: list[iam.IPrincipal] = [iam.ArnPrincipal(arn) for arn in invokers] or [iam.AccountRootPrincipal()]
    for principal in principals:
        alias.grant_invoke_url(principal)


# AWS's managed rule groups the web ACL runs, in order: common exploits (OWASP top 10), then known-bad inputs.
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")


def rest_web_acl(
    scope: Construct, construct_id: str, *, names: ResourceNames, stage_arn: str, rate_limit: int
) -> wafv2.CfnWebACL:
    """A regional WAF web ACL on the REST API's stage: AWS's managed rule groups and a per-IP rate rule."""

    def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
        )

    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group
                )
            ),
            visibility_config=visibility(group),
        )
        for priority, group in enumerate(MANAGED_RULE_GROUPS)
    ]
    rules.append(
        wafv2.CfnWebACL.RuleProperty(
            name="RatePerIp",
            priority=len(rules),
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                )
            ),
            visibility_config=visibility("RatePerIp"),
        )
    )
    acl = wafv2.CfnWebACL(
        scope,
        construct_id,
        name=f"{names.api}-waf",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        rules=rules,
        visibility_config=visibility(f"{names.api}-waf"),
    )
    wafv2.CfnWebACLAssociation(scope, f"{construct_id}Association", resource_arn=stage_arn, web_acl_arn=acl.attr_arn)
    return acl
