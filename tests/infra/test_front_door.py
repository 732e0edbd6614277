"""Each front door api.type names: routes, auth, throttle, access log, alarms on its own metrics, cdk-nag clean.

The REST API is asserted in test_serving.py on the session's templates (prod's carries the WAF web ACL); the HTTP
API and the function URL are synthesized here once each, cdk-nag included; the HTTP API under IAM is built alone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template
from synth_support import PROJECT_ROOT, cdk_context, checkov_failures, only, resources

from infra.app import FEATURE_FLAGS, build_app
from infra.front_doors import MANAGED_RULE_GROUPS, HttpFrontDoor, grant_url_invokers, http_access_log_format
from infra.routes import ROUTES
from infra.serving import ACCESS_LOG_FORMAT
from stage.names import ResourceNames
from stage.settings import ApiSettings, load_settings

ISSUER = "https://issuer.example.com/"
FRONT_DOORS: dict[str, dict[str, Any]] = {
    "http": {"type": "http", "auth": "jwt", "jwt_issuer": ISSUER, "jwt_audience": ["slipway"]},
    "function_url": {"type": "function_url", "auth": "iam", "invokers": ["arn:aws:iam::111122223333:role/app"]},
}


def _synth_with_nag(api: dict[str, Any], outdir: Path) -> Template:
    """Dev with `api`, synthesized as `cdk synth` does it (cdk-nag runs, and fails the synth on a finding)."""
    context = cdk_context()
    context["slipway:stages"]["dev"] = {**context["slipway:stages"]["dev"], "api": api}
    app = App(
        context={**context, "stage": "dev", "aws:cdk:bundling-stacks": []},
        post_cli_context=FEATURE_FLAGS,
        outdir=str(outdir),
    )
    _, stack = build_app(app)
    assembly = app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    assert all(plugin.get("conclusion") != "failure" for plugin in report["pluginReports"]), report
    return Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    return {name: _synth_with_nag(api, tmp_path_factory.mktemp(name)) for name, api in FRONT_DOORS.items()}


def _alarm(template: Template, construct: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"] for key, a in resources(template, "AWS::CloudWatch::Alarm").items() if key.startswith(construct)
    ]
    return alarm


def _math_metrics(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A metric-math alarm's metrics by id: their namespace, name and dimension names."""
    return {query["Id"]: query["MetricStat"]["Metric"] for query in alarm.get("Metrics", []) if "MetricStat" in query}


# -- the HTTP API -------------------------------------------------------------------------


def test_http_api_serves_every_route_through_the_live_alias_with_payload_2(doors: dict[str, Template]) -> None:
    template = doors["http"]
    assert not resources(template, "AWS::ApiGateway::RestApi")
    assert only(template, "AWS::ApiGatewayV2::Api")["Properties"]["ProtocolType"] == "HTTP"
    routes = resources(template, "AWS::ApiGatewayV2::Route").values()
    assert sorted(r["Properties"]["RouteKey"] for r in routes) == sorted(f"{r.method} /{r.path}" for r in ROUTES)
    [integration] = resources(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"]["Ref"].startswith("ServingLiveAlias")


def test_http_api_checks_a_jwt_on_every_route(doors: dict[str, Template]) -> None:
    template = doors["http"]
    authorizer = only(template, "AWS::ApiGatewayV2::Authorizer")["Properties"]
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["JwtConfiguration"] == {"Issuer": ISSUER, "Audience": ["slipway"]}
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    for route in resources(template, "AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["AuthorizationType"] == "JWT", route


def test_http_stage_throttles_everything_and_writes_far_lower_and_logs_a_lean_line(
    doors: dict[str, Template],
) -> None:
    stage = only(doors["http"], "AWS::ApiGatewayV2::Stage")["Properties"]
    api = ApiSettings.model_validate(FRONT_DOORS["http"])
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": api.throttle_rate, "ThrottlingBurstLimit": api.throttle_burst,
    }  # fmt: skip
    writes = {"POST /predict/async", "POST /feedback"}
    assert set(stage["RouteSettings"]) == writes
    for route in writes:
        assert stage["RouteSettings"][route] == {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
    log = stage["AccessLogSettings"]
    assert log["DestinationArn"]["Fn::GetAtt"][0].startswith("ServingApiAccessLogs")
    fields = json.loads(log["Format"])
    assert fields == {
        "requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
        "caller": "$context.authorizer.claims.sub", "route": "$context.routeKey", "status": "$context.status",
    }  # fmt: skip
    # Every byte of it is billed per request: half the fields of the REST line, or fewer.
    assert len(fields) <= len(json.loads(ACCESS_LOG_FORMAT)) / 2


def test_http_api_alarms_and_dashboard_read_its_own_metric_names(doors: dict[str, Template]) -> None:
    template = doors["http"]
    metrics = _math_metrics(_alarm(template, "ObservabilityApi5xxRate"))
    assert {m["MetricName"] for m in metrics.values()} == {"5xx", "Count"}
    for metric in metrics.values():
        assert metric["Namespace"] == "AWS/ApiGateway"
        assert [d["Name"] for d in metric["Dimensions"]] == ["ApiId", "Stage"]
    latency = _alarm(template, "ObservabilityApiLatencyP99")
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    assert latency["Namespace"] == "AWS/ApiGateway"
    dashboard = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert '\\"4xx\\"' in dashboard and '\\"5xx\\"' in dashboard


def test_http_api_url_is_the_endpoint_output(doors: dict[str, Template]) -> None:
    value = doors["http"].to_json()["Outputs"]["EndpointUrl"]["Value"]
    [api_endpoint, slash] = value["Fn::Join"][1]
    assert api_endpoint["Fn::GetAtt"][1] == "ApiEndpoint" and slash == "/"
    assert "ApiKeyId" not in doors["http"].to_json()["Outputs"]


def _live_alias(stack: Stack) -> lambda_.Alias:
    """A stand-in function's `live` alias, for a front door built alone."""
    function = lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )  # fmt: skip
    return lambda_.Alias(stack, "Live", alias_name="live", version=function.current_version)


def test_http_api_under_iam_signs_every_route_and_logs_the_principal() -> None:
    stack = Stack(App(), "Door")
    alias = _live_alias(stack)
    api = ApiSettings(type="http", auth="iam")
    names = ResourceNames.of(load_settings("dev"), account="111122223333", region="us-east-1")
    HttpFrontDoor(
        stack, "Http", names=names, api=api, alias=alias, routes=ROUTES,
        access_logs=logs.LogGroup(stack, "Logs", retention=logs.RetentionDays.ONE_WEEK),
    )  # fmt: skip
    template = Template.from_stack(stack)
    assert not resources(template, "AWS::ApiGatewayV2::Authorizer")
    routes = resources(template, "AWS::ApiGatewayV2::Route").values()
    assert len(routes) == len(ROUTES)
    assert {r["Properties"]["AuthorizationType"] for r in routes} == {"AWS_IAM"}
    log_format = only(template, "AWS::ApiGatewayV2::Stage")["Properties"]["AccessLogSettings"]["Format"]
    assert log_format == http_access_log_format("iam")
    assert json.loads(log_format)["caller"] == "$context.identity.userArn"


# -- the function URL ---------------------------------------------------------------------


def test_function_url_is_on_the_live_alias_under_sigv4_without_cors(doors: dict[str, Template]) -> None:
    template = doors["function_url"]
    assert not resources(template, "AWS::ApiGateway::RestApi")
    assert not resources(template, "AWS::ApiGatewayV2::Api")
    url = only(template, "AWS::Lambda::Url")["Properties"]
    assert url["AuthType"] == "AWS_IAM" and url["Qualifier"] == "live"
    assert url["TargetFunctionArn"]["Fn::GetAtt"][0].startswith("ServingFunction")
    assert "Cors" not in url
    output = template.to_json()["Outputs"]["EndpointUrl"]["Value"]
    assert output["Fn::GetAtt"][1] == "FunctionUrl"


def test_function_url_lets_in_exactly_the_invokers(doors: dict[str, Template]) -> None:
    template = doors["function_url"]
    permissions = [
        p["Properties"] for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"].get("Ref", "").startswith("ServingLiveAlias")
    ]  # fmt: skip
    # The URL's own permission, and Lambda's second one for the invocation it makes (only through the URL).
    by_action = {p["Action"]: p for p in permissions}
    assert sorted(by_action) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    assert {p["Principal"] for p in permissions} == set(FRONT_DOORS["function_url"]["invokers"])
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "AWS_IAM"
    assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True


def test_function_url_without_invokers_lets_in_this_accounts_principals() -> None:
    stack = Stack(App(), "Door")
    alias = _live_alias(stack)
    grant_url_invokers(alias, ())
    permissions = [p["Properties"] for p in resources(Template.from_stack(stack), "AWS::Lambda::Permission").values()]
    assert len(permissions) == 2 and {json.dumps(p["Principal"]) for p in permissions} == {'{"Ref": "AWS::AccountId"}'}


def test_function_url_alarms_on_the_functions_own_metrics(doors: dict[str, Template]) -> None:
    template = doors["function_url"]
    errors_5xx = _math_metrics(_alarm(template, "ObservabilityApi5xxRate"))
    assert {m["MetricName"] for m in errors_5xx.values()} == {"Url5xxCount", "UrlRequestCount"}
    errors = _math_metrics(_alarm(template, "ObservabilityFunctionErrorRate"))
    assert {m["MetricName"] for m in errors.values()} == {"Errors", "Invocations"}
    for metric in (*errors_5xx.values(), *errors.values()):
        assert metric["Namespace"] == "AWS/Lambda"
        # The alias's figures: the URL serves it alone.
        assert [d["Name"] for d in metric["Dimensions"]] == ["FunctionName", "Resource"]
    duration = _alarm(template, "ObservabilityApiLatencyP99")
    assert (duration["MetricName"], duration["ExtendedStatistic"]) == ("Duration", "p99")
    assert _alarm(template, "ObservabilityFunctionThrottles")["MetricName"] == "Throttles"
    dashboard = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert "Url4xxCount" in dashboard and "UrlRequestCount" in dashboard
    assert "AWS/ApiGateway" not in dashboard


def test_snap_start_and_the_alias_are_the_same_behind_every_front_door(doors: dict[str, Template]) -> None:
    for template in doors.values():
        [function] = [
            f["Properties"] for key, f in resources(template, "AWS::Lambda::Function").items()
            if key.startswith("ServingFunction")
        ]  # fmt: skip
        assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert only(template, "AWS::Lambda::Alias")["Properties"]["Name"] == "live"


# -- the REST API's WAF (prod turns it on) ---------------------------------------------------


def test_prod_rest_stage_is_behind_a_waf_web_acl(templates: dict[str, Template]) -> None:
    template = templates["prod"]
    acl = only(template, "AWS::WAFv2::WebACL")["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    managed = [r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"] if "OverrideAction" in r]
    assert managed == list(MANAGED_RULE_GROUPS)
    [rate] = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP", "Limit": 2000, "EvaluationWindowSec": 300,
    }  # fmt: skip
    association = only(template, "AWS::WAFv2::WebACLAssociation")["Properties"]
    arn = json.dumps(association["ResourceArn"])
    assert "/restapis/" in arn and "/stages/" in arn and "ServingApiDeploymentStageprod" in arn
    assert association["WebACLArn"]["Fn::GetAtt"][0].startswith("ServingWebAcl")
    # Dev keeps throttling and auth alone (api.waf off): no web ACL's monthly fee.
    assert not resources(templates["dev"], "AWS::WAFv2::WebACL")


def test_the_iam_checks_of_every_stage_hold_behind_every_front_door(doors: dict[str, Template]) -> None:
    """test_iam.py's checks, on these templates too: no front door adds a wildcard or a right to the inference role."""
    from test_iam import (
        test_every_service_trust_policy_names_its_source_but_the_documented_ones,
        test_inference_role_has_exactly_the_documented_rights,
        test_no_wildcard_action_and_only_documented_wildcard_resources,
    )

    test_no_wildcard_action_and_only_documented_wildcard_resources(doors)
    test_inference_role_has_exactly_the_documented_rights(doors)
    test_every_service_trust_policy_names_its_source_but_the_documented_ones(doors)


def test_cfn_lint_and_checkov_pass_on_each_front_door_type(doors: dict[str, Template], tmp_path: Path) -> None:
    """REST (dev and prod) is checked in test_cli_synth; the other two types' templates here."""
    templates = []
    for name, template in doors.items():
        templates.append(tmp_path / f"{name}.template.json")
        templates[-1].write_text(json.dumps(template.to_json()))
    lint = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "cfn-lint"), "--", *map(str, templates)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    failed = checkov_failures(templates)
    assert not failed, f"checkov findings (fix them or give a reason in .checkov.yaml): {failed}"
