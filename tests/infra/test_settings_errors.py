"""Bad stage settings fail before anything is synthesized, naming the setting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from synth_support import cdk_context, synth

from stage.settings import SettingsError, settings_from_context


def _with_dev(**override: Any) -> dict[str, Any]:
    context = cdk_context()
    context["slipway:stages"]["dev"] = override
    return context


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"inference": {"reserved_concurrency": -1}}, "inference.reserved_concurrency"),
        ({"provisioned_concurrency": {"enabled": True, "min": 30, "max": 20}}, "provisioned_concurrency"),
        ({"alarms": {"email": "not-an-email"}}, "alarms.email"),
        ({"logs": {"retention_days": 31}}, "logs.retention_days"),
        ({"api": {"auth": "none"}}, "api.auth"),
        # Lambda refuses SnapStart and provisioned concurrency on one version; the stage says so first.
        ({"inference": {"snap_start": True}, "provisioned_concurrency": {"enabled": True}}, "inference.snap_start"),
        ({"inference": {"runtime": "python3.11"}}, "inference.runtime"),
        # A path segment of the protocol's URLs: lower case, no slash or space.
        ({"inference": {"model_name": "Iris Model"}}, "inference.model_name"),
        # A training image by tag could be moved under the stage; by digest it cannot.
        ({"retrain": {"sagemaker_image_uri": "1.dkr.ecr.us-east-1.amazonaws.com/train:latest"}}, "sagemaker_image_uri"),
        ({"api": {"clients": ["a", "a"]}}, "api.clients"),
        ({"api": {"clients": ["Bad Name"]}}, "api.clients"),
        ({"api": {"tls_policy": "TLS_1_0"}}, "api.tls_policy"),
        ({"alarms": {"monthly_budget_usd": -5}}, "alarms.monthly_budget_usd"),
        # A module by its import path, not a file.
        ({"recipe": "model/recipe.py"}, "recipe"),
        # Each front door offers its own ways in, and only its own settings.
        ({"api": {"type": "http"}}, "api.auth api_key is not offered by api.type http"),
        ({"api": {"type": "function_url", "auth": "jwt"}}, "api.auth jwt is not offered by api.type function_url"),
        ({"api": {"type": "rest", "auth": "jwt"}}, "api.auth jwt is not offered by api.type rest"),
        (
            {"api": {"type": "http", "auth": "jwt"}},
            "api.auth jwt needs api.jwt_issuer and at least one api.jwt_audience",
        ),
        (
            {"api": {"auth": "iam", "jwt_issuer": "https://issuer.example.com/"}},
            "api.jwt_issuer applies to api.type http",
        ),
        ({"api": {"type": "http", "auth": "iam", "jwt_audience": ["a"]}}, "api.jwt_issuer and api.jwt_audience apply"),
        (
            {"api": {"type": "http", "auth": "jwt", "jwt_issuer": "http://plain", "jwt_audience": ["a"]}},
            "api.jwt_issuer",
        ),
        ({"api": {"type": "http", "auth": "iam", "clients": ["a"]}}, "api.clients applies to api.type rest only"),
        ({"api": {"type": "http", "auth": "iam", "metering_keys": True}}, "api.metering_keys applies to api.type rest"),
        ({"api": {"type": "http", "auth": "iam", "tls_policy": "SecurityPolicy_TLS13_1_3_2025_09"}}, "api.tls_policy"),
        ({"api": {"type": "http", "auth": "iam", "waf": True}}, "api.waf applies to api.type rest only, not http"),
        ({"api": {"type": "http", "auth": "iam", "writers": []}}, "api.writers applies to api.type rest only"),
        ({"api": {"type": "http", "auth": "iam", "invokers": ["arn:aws:iam::1:role/a"]}}, "HTTP API lacks"),
        (
            {"api": {"type": "function_url", "auth": "iam", "throttle_rate": 5}},
            "api.throttle_rate applies to api.type rest or http",
        ),
        ({"api": {"type": "function_url", "auth": "iam", "invokers": ["arn:aws:iam::1:role/app-*"]}}, "exact ARNs"),
        ({"api": {"waf": True, "waf_rate_limit": 5}}, "api.waf_rate_limit"),
    ],
)
def test_bad_value_names_the_setting(override: dict[str, Any], setting: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(setting)):
        settings_from_context(_with_dev(**override), "dev")


@pytest.mark.parametrize(
    "api",
    [
        {"type": "http", "auth": "iam", "throttle_rate": 50, "write_throttle_burst": 5},
        {"type": "http", "auth": "jwt", "jwt_issuer": "https://issuer.example.com/", "jwt_audience": ["slipway"]},
        {"type": "function_url", "auth": "iam", "invokers": ["arn:aws:iam::111122223333:role/app"]},
        {"type": "rest", "auth": "iam", "waf": True, "waf_rate_limit": 500, "writers": []},
    ],
)
def test_each_front_door_takes_its_own_settings(api: dict[str, Any]) -> None:
    settings = settings_from_context(_with_dev(api=api), "dev")
    assert settings.api.type == api["type"] and settings.api.auth == api["auth"]


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown stage 'nope'.*\['dev', 'prod'\]"):
        settings_from_context(cdk_context(), "nope")


def test_the_app_raises_it_before_building_anything(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match=r"provisioned_concurrency: .*min \(30\) must not exceed max \(20\)"):
        synth(_with_dev(provisioned_concurrency={"enabled": True, "min": 30, "max": 20}), "dev", tmp_path)
