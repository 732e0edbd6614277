"""The stage's `recipe` setting selects what the local stack trains, serves and retrains: the second example
runs as it is, with no copy over model/recipe.py."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import pytest

from functions.retrain.config import RetrainConfig
from slipway.local.stack import LocalStack
from slipway.local.traffic import example_rows
from slipway.target import resolve
from tests.slipway.stacks import running_stack

PENGUINS = "model.examples.penguins"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("logs"), overrides={"recipe": PENGUINS}) as local:
        yield local


def test_the_stack_trains_and_serves_the_recipe_its_setting_names(stack: LocalStack) -> None:
    assert stack.settings is not None and stack.settings.recipe == PENGUINS
    manifest = resolve("dev").registry().store.get_manifest(stack.live_version or "")
    assert manifest.lineage.recipe == PENGUINS
    assert [segment.feature for segment in manifest.segments] == ["species"]

    rows = example_rows(5, seed=1, recipe_name=PENGUINS)
    request = urllib.request.Request(
        f"{stack.url}/predict", data=json.dumps({"instances": rows.instances}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert body["model_version"] == manifest.version
    assert {prediction["label"] for prediction in body["predictions"]} <= {"female", "male"}


def test_the_retrain_functions_read_the_same_recipe(stack: LocalStack) -> None:
    assert os.environ["RECIPE"] == PENGUINS
    assert RetrainConfig.from_environ().recipe == PENGUINS
