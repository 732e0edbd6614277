"""Every default once: in the settings models; cdk.json holds only what differs; docs/settings.md is generated."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from stage.reference import REFERENCE, render
from stage.settings import StageSettings, load_context

pytestmark = pytest.mark.unit


def test_the_settings_reference_is_generated_from_the_models_and_cdk_json() -> None:
    assert REFERENCE.read_text() == render(), "docs/settings.md is stale: run python -m stage.reference"


def _restated_defaults(model: type[BaseModel], overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """Overrides in cdk.json that only repeat the model's default (a second copy that could drift apart)."""
    found = []
    for name, value in overrides.items():
        field = model.model_fields[name]
        nested = field.annotation if isinstance(field.annotation, type) else None
        if isinstance(value, dict) and nested is not None and issubclass(nested, BaseModel):
            found += _restated_defaults(nested, value, f"{prefix}{name}.")
        elif value == _plain(field.get_default(call_default_factory=True)):
            found.append(f"{prefix}{name}")
    return found


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def test_cdk_json_holds_only_what_a_stage_changes() -> None:
    context = load_context()
    sections = [context.get("slipway:defaults", {}), *context["slipway:stages"].values()]
    restated = [name for overrides in sections for name in _restated_defaults(StageSettings, overrides or {})]
    assert not restated, f"cdk.json repeats these defaults of stage/settings.py: {restated}"
    # The reference shows each stage's values: prod's overrides are on the page.
    assert '| `api.auth` | one of "api_key", "iam", "jwt" | `"api_key"` |  | `"iam"` |' in render()


def test_a_restated_default_is_caught() -> None:
    assert _restated_defaults(StageSettings, {"retrain": {"gate": {"tolerance": 0.01}}, "region": "eu-west-1"}) == [
        "retrain.gate.tolerance"
    ]


def test_every_setting_says_what_it_means() -> None:
    rows = [line.split("|") for line in render().splitlines() if line.startswith("| `")]
    assert len(rows) > 90
    assert not [row[1] for row in rows if not row[-2].strip()], "settings without a description"
