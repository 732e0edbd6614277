"""The inference function, its alias and scaling, and the REST API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from synth_support import LAKE_CLIENTS, cdk_context, only, resources, synth

from infra.serving import ROUTES
from stage.settings import StageSettings


def _function(template: Template) -> dict[str, Any]:
    functions = resources(template, "AWS::Lambda::Function")
    [inference] = [fn for key, fn in functions.items() if key.startswith("ServingFunction")]
    return inference["Properties"]


def test_function_runtime_architecture_memory_tracing(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in ("dev", "prod"):
        fn, inference = _function(templates[stage]), settings[stage].inference
        assert fn["Runtime"] == inference.runtime
        assert fn["Architectures"] == ["arm64"]
        assert fn["MemorySize"] == inference.memory_mb
        assert fn["Timeout"] == inference.timeout_seconds
        assert fn["Handler"] == "functions.inference.handler.lambda_handler"
        assert fn["TracingConfig"] == {"Mode": "Active"}
        assert fn["FunctionName"] == f"slipway-{stage}-inference"
    assert "ReservedConcurrentExecutions" not in _function(templates["dev"])
    assert _function(templates["prod"])["ReservedConcurrentExecutions"] == 100


def test_environment_is_exactly_the_config_aliases_plus_powertools(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    from functions.inference.config import InferenceConfig

    env = _function(templates["prod"])["Environment"]["Variables"]
    aliases = InferenceConfig.variable_names()
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    # ROW_KEY is set only where the stage declares data.key (prod does not; the dev-lake template does), and
    # MODEL_NAME only where it names the model (inference.model_name; unset, the recipe names it).
    assert settings["prod"].data.key is None and settings["prod"].inference.model_name is None
    assert set(env) == (aliases - {"ROW_KEY", "MODEL_NAME"}) | powertools
    assert _function(templates["dev-lake"])["Environment"]["Variables"]["ROW_KEY"] == "patient_id"
    # The same names the storage construct gives the bucket and the parameter (one names module).
    bucket = _artifacts_bucket(templates["prod"])
    assert env["ARTIFACTS_BUCKET"] == bucket["Properties"]["BucketName"]
    parameter = only(templates["prod"], "AWS::SSM::Parameter")["Properties"]
    assert env["LIVE_POINTER_PARAMETER"] == parameter["Name"] == "/slipway/prod/live-model"
    assert env["CAPTURE_SAMPLING_RATE"] == "0.1"
    assert env["MAX_BODY_BYTES"] == str(settings["prod"].inference.max_body_bytes)
    assert env["POWERTOOLS_SERVICE_NAME"] == "slipway-inference"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Slipway/prod"


def test_function_log_group_keeps_captured_rows_no_longer_than_capture(templates: dict[str, Template]) -> None:
    # The inference log carries the captured rows: the stage's retention, capped at capture's 90 days (prod keeps
    # its other logs 365). The API access log has the stage's retention.
    for stage, function_days, access_days in (("dev", 30, 30), ("prod", 90, 365)):
        groups = {
            k: g for k, g in resources(templates[stage], "AWS::Logs::LogGroup").items() if k.startswith("Serving")
        }
        assert len(groups) == 2  # function logs and API access logs, no LogRetention custom resource
        days = {k.removeprefix("Serving")[:12]: g["Properties"]["RetentionInDays"] for k, g in groups.items()}
        assert days == {"FunctionLogs": function_days, "ApiAccessLog": access_days}, days
        fn = _function(templates[stage])
        assert fn["LoggingConfig"]["LogGroup"]["Ref"].startswith("ServingFunctionLogs")
        assert not resources(templates[stage], "Custom::LogRetention")


def test_live_alias_everywhere_provisioned_concurrency_only_in_prod(templates: dict[str, Template]) -> None:
    dev_alias = only(templates["dev"], "AWS::Lambda::Alias")["Properties"]
    assert dev_alias["Name"] == "live" and "ProvisionedConcurrencyConfig" not in dev_alias
    assert not resources(templates["dev"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert not resources(templates["dev"], "AWS::ApplicationAutoScaling::ScalingPolicy")

    prod = templates["prod"]
    prod_alias = only(prod, "AWS::Lambda::Alias")["Properties"]
    assert prod_alias["Name"] == "live"
    assert prod_alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    prod.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 2, "MaxCapacity": 20, "ScalableDimension": "lambda:function:ProvisionedConcurrency"},
    )
    prod.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"},
                "TargetValue": 0.7,
            },
        },
    )


def test_snap_start_on_the_inference_versions_exactly_where_provisioned_concurrency_is_off(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    assert (settings["dev"].snap_start, settings["prod"].snap_start) == (True, False)
    assert _function(templates["dev"])["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in _function(templates["prod"])
    # The other functions run on $LATEST (event sources, state machines), which is never snapshotted.
    functions = resources(templates["dev"], "AWS::Lambda::Function")
    snapshotted = [key for key, fn in functions.items() if "SnapStart" in fn["Properties"]]
    assert len(snapshotted) == 1 and snapshotted[0].startswith("ServingFunction"), snapshotted
    # What API Gateway calls is the alias, on a published version: the one a snapshot is taken of.
    alias = only(templates["dev"], "AWS::Lambda::Alias")["Properties"]
    [version_id, attribute] = alias["FunctionVersion"]["Fn::GetAtt"]
    assert version_id.startswith("ServingFunctionCurrentVersion") and attribute == "Version"


def test_snap_start_can_be_turned_off_and_every_function_takes_the_stage_runtime(tmp_path: Path) -> None:
    context = cdk_context()
    context["slipway:stages"]["dev"] = {"inference": {"snap_start": False, "runtime": "python3.14"}}
    template = synth(context, "dev", tmp_path)
    functions = resources(template, "AWS::Lambda::Function")
    python = {key: fn for key, fn in functions.items() if fn["Properties"]["Runtime"].startswith("python")}
    assert {fn["Properties"]["Runtime"] for fn in python.values()} == {"python3.14"}, python
    assert not [key for key, fn in functions.items() if "SnapStart" in fn["Properties"]]


def test_routes_proxy_to_the_live_alias(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    paths = {r["Properties"]["PathPart"] for r in resources(template, "AWS::ApiGateway::Resource").values()}
    # One API Gateway resource per path segment (predict/async/{job_id} nests three).
    assert paths == {part for route in ROUTES for part in route.path.split("/")}
    methods = resources(template, "AWS::ApiGateway::Method").values()
    assert sorted(m["Properties"]["HttpMethod"] for m in methods) == sorted(route.method for route in ROUTES)
    for method in methods:
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        uri = str(integration["Uri"])
        assert "ServingLiveAlias" in uri


def test_stage_throttling_logging_and_tracing(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for stage in ("dev", "prod"):
        props = only(templates[stage], "AWS::ApiGateway::Stage")["Properties"]
        api = settings[stage].api
        assert props["StageName"] == stage
        assert props["TracingEnabled"] is True
        # Every method, then the two write routes' own throttle (test_write_routes_are_throttled_far_below_predict).
        [method_settings] = [m for m in props["MethodSettings"] if m["ResourcePath"] == "/*"]
        assert method_settings["HttpMethod"] == "*" and len(props["MethodSettings"]) == 3
        assert method_settings["ThrottlingRateLimit"] == api.throttle_rate
        assert method_settings["ThrottlingBurstLimit"] == api.throttle_burst
        assert method_settings["MetricsEnabled"] is True and method_settings["DataTraceEnabled"] is False
        assert method_settings["LoggingLevel"] == "ERROR"
        access = props["AccessLogSetting"]
        assert access["DestinationArn"]["Fn::GetAtt"][0].startswith("ServingApiAccessLogs")
        fields = json.loads(access["Format"])
        assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"
        # The caller, as authenticated: SigV4's principal or the API key id.
        assert fields["userArn"] == "$context.identity.userArn" and fields["apiKeyId"] == "$context.identity.apiKeyId"


def test_api_key_mode_usage_plan_and_key(templates: dict[str, Template], settings: dict[str, StageSettings]) -> None:
    template, api = templates["dev"], settings["dev"].api
    for method in resources(template, "AWS::ApiGateway::Method").values():
        assert method["Properties"]["ApiKeyRequired"] is True
        assert method["Properties"]["AuthorizationType"] == "NONE"
    plan = only(template, "AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"RateLimit": api.throttle_rate, "BurstLimit": api.throttle_burst}
    assert plan["Quota"] == {"Limit": api.quota_per_day, "Period": "DAY"}
    only(template, "AWS::ApiGateway::ApiKey")
    only(template, "AWS::ApiGateway::UsagePlanKey")


def test_each_api_client_has_its_own_key_and_usage_plan(templates: dict[str, Template]) -> None:
    template = templates["dev-lake"]
    api_keys = resources(template, "AWS::ApiGateway::ApiKey")
    keys = {logical: key["Properties"]["Name"] for logical, key in api_keys.items()}
    assert sorted(keys.values()) == sorted(f"slipway-dev-{client}" for client in LAKE_CLIENTS)
    plans = resources(template, "AWS::ApiGateway::UsagePlan")
    links = resources(template, "AWS::ApiGateway::UsagePlanKey").values()
    # Each key is in exactly one plan, and no two keys share one: one client's quota is its own.
    pairs = {(link["Properties"]["KeyId"]["Ref"], link["Properties"]["UsagePlanId"]["Ref"]) for link in links}
    assert {key for key, _ in pairs} == set(keys) and len({plan for _, plan in pairs}) == len(plans) == len(keys)
    first = template.to_json()["Outputs"]["ApiKeyId"]["Value"]["Ref"]
    assert keys[first] == "slipway-dev-client"


def test_every_rest_api_negotiates_an_enhanced_tls_policy(
    templates: dict[str, Template], settings: dict[str, StageSettings]
) -> None:
    for name, template in templates.items():
        props = only(template, "AWS::ApiGateway::RestApi")["Properties"]
        assert props["SecurityPolicy"].startswith("SecurityPolicy_TLS13_"), name
        assert props["EndpointAccessMode"] == "STRICT", name
    assert only(templates["prod"], "AWS::ApiGateway::RestApi")["Properties"]["SecurityPolicy"] == (
        settings["prod"].api.tls_policy
    )


def test_iam_mode_signs_every_method_and_has_no_key(templates: dict[str, Template]) -> None:
    template = templates["dev-iam"]
    methods = resources(template, "AWS::ApiGateway::Method").values()
    assert len(methods) == len(ROUTES)
    for method in methods:
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert not method["Properties"].get("ApiKeyRequired", False)
    assert not resources(template, "AWS::ApiGateway::ApiKey")
    assert not resources(template, "AWS::ApiGateway::UsagePlan")
    assert "ApiKeyId" not in template.to_json()["Outputs"]


def test_iam_mode_can_also_meter_each_client_by_its_key(tmp_path: Path) -> None:
    context = cdk_context()
    context["slipway:stages"]["dev"] = {"api": {"auth": "iam", "metering_keys": True, "clients": ["a", "b"]}}
    template = synth(context, "dev", tmp_path)
    for method in resources(template, "AWS::ApiGateway::Method").values():
        # SigV4 authenticates; the key only picks the usage plan (quota) the call counts against.
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert method["Properties"]["ApiKeyRequired"] is True
    assert len(resources(template, "AWS::ApiGateway::UsagePlan")) == 2
    assert "ApiKeyId" in template.to_json()["Outputs"]


def test_prod_has_no_route_a_shared_key_alone_opens(templates: dict[str, Template]) -> None:
    template = templates["prod"]
    for method in resources(template, "AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM", method
        assert not method["Properties"].get("ApiKeyRequired", False)
    assert not resources(template, "AWS::ApiGateway::ApiKey")
    # Only principals of this account, by default (api.invokers names others, exactly).
    statements = only(template, "AWS::ApiGateway::RestApi")["Properties"]["Policy"]["Statement"]
    [statement] = statements
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert ":root" in json.dumps(statement["Principal"])


def test_write_routes_are_throttled_far_below_predict(templates: dict[str, Template]) -> None:
    for name in ("dev", "prod"):
        stage = only(templates[name], "AWS::ApiGateway::Stage")["Properties"]
        settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["MethodSettings"]}
        every = settings[("/*", "*")]
        for path in ("/~1feedback", "/~1predict~1async"):
            write = settings[(path, "POST")]
            assert (write["ThrottlingRateLimit"], write["ThrottlingBurstLimit"]) == (10, 20), write
            assert write["ThrottlingRateLimit"] < every["ThrottlingRateLimit"] / 5


def test_writers_and_invokers_are_exact_lists() -> None:
    from infra.serving import _resource_policy
    from stage.settings import ApiSettings

    document = _resource_policy(
        ApiSettings(auth="iam", invokers=("arn:aws:iam::111122223333:role/app-*",),
                    writers=("arn:aws:iam::111122223333:role/labeller",))
    ).to_json()  # fmt: skip
    allow, deny_others, deny_writes = document["Statement"]
    assert allow["Condition"] == {"ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/app-*"]}}
    assert deny_others["Effect"] == "Deny" and deny_others["Resource"] == "execute-api:/*"
    assert deny_writes["Effect"] == "Deny"
    assert deny_writes["Resource"] == ["execute-api:/*/POST/predict/async", "execute-api:/*/POST/feedback"]
    assert deny_writes["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/labeller"]}}
    # No writers at all: the write routes are closed to everyone.
    closed = _resource_policy(ApiSettings(auth="iam", writers=())).to_json()["Statement"][-1]
    assert closed["Effect"] == "Deny" and "Condition" not in closed


def test_outputs(templates: dict[str, Template]) -> None:
    outputs = templates["dev"].to_json()["Outputs"]
    assert {"EndpointUrl", "ApiKeyId", "DashboardUrl"} <= set(outputs)
    assert "dashboards:name=slipway-dev-dashboard" in str(outputs["DashboardUrl"]["Value"])


def _artifacts_bucket(template: Template) -> dict[str, Any]:
    (bucket,) = [b for name, b in resources(template, "AWS::S3::Bucket").items() if "Artifacts" in name]
    return bucket


def _inference_log_group(template: Template, stage: str) -> dict[str, Any]:
    [group] = [
        group["Properties"]
        for group in resources(template, "AWS::Logs::LogGroup").values()
        if group["Properties"].get("LogGroupName") == f"/aws/lambda/slipway-{stage}-inference"
    ]
    return group


def test_prod_inference_log_is_under_its_own_key_and_masks_secrets(templates: dict[str, Template]) -> None:
    template = templates["prod"]
    props = _inference_log_group(template, "prod")
    key_id = props["KmsKeyId"]["Fn::GetAtt"][0]
    policy = resources(template, "AWS::KMS::Key")[key_id]["Properties"]
    assert policy["EnableKeyRotation"] is True
    [logs_statement] = [s for s in policy["KeyPolicy"]["Statement"] if "logs." in json.dumps(s["Principal"])]
    # The key serves this one log group: the encryption context names it.
    context = json.dumps(logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
    assert "log-group:/aws/lambda/slipway-prod-inference" in context
    [masking] = [s for s in props["DataProtectionPolicy"]["Statement"] if "Deidentify" in s["Operation"]]
    identifiers = {json.dumps(i).rsplit("/", 1)[-1].strip('"]}') for i in masking["DataIdentifier"]}
    assert {"EmailAddress", "AwsSecretKey", "OpenSshPrivateKey"} <= identifiers
    # Dev keeps AWS's own encryption and no masking (logs.protect_inference is off there).
    dev = _inference_log_group(templates["dev"], "dev")
    assert "KmsKeyId" not in dev and "DataProtectionPolicy" not in dev
