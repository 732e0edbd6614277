"""Bad stage settings fail before anything is synthesized, naming the setting."""

from __future__ import annotations

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
        # A training image by tag could be moved under the stage; by digest it cannot.
        ({"retrain": {"sagemaker_image_uri": "1.dkr.ecr.us-east-1.amazonaws.com/train:latest"}}, "sagemaker_image_uri"),
        ({"api": {"clients": ["a", "a"]}}, "api.clients"),
        ({"api": {"clients": ["Bad Name"]}}, "api.clients"),
        ({"api": {"tls_policy": "TLS_1_0"}}, "api.tls_policy"),
        ({"alarms": {"monthly_budget_usd": -5}}, "alarms.monthly_budget_usd"),
        # A module by its import path, not a file.
        ({"recipe": "model/recipe.py"}, "recipe"),
    ],
)
def test_bad_value_names_the_setting(override: dict[str, Any], setting: str) -> None:
    with pytest.raises(SettingsError, match=setting.replace(".", r"\.")):
        settings_from_context(_with_dev(**override), "dev")


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"unknown stage 'nope'.*\['dev', 'prod'\]"):
        settings_from_context(cdk_context(), "nope")


def test_the_app_raises_it_before_building_anything(tmp_path: Any) -> None:
    with pytest.raises(SettingsError, match=r"provisioned_concurrency: .*min \(30\) must not exceed max \(20\)"):
        synth(_with_dev(provisioned_concurrency={"enabled": True, "min": 30, "max": 20}), "dev", tmp_path)
