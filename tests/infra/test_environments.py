"""Every function's environment in the template is exactly what its configuration model reads, and parses with it."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from functions.core.config import FunctionConfig
from functions.core.gate import GatePolicy
from functions.inference.config import InferenceConfig, WorkerConfig
from functions.monitor.config import MonitorConfig
from functions.retrain.config import RetrainConfig, RetrainPolicy
from functions.rollout.config import RolloutConfig
from stage.environments import retrain_environment
from stage.names import ResourceNames
from stage.settings import load_settings, with_overrides
from tests.assembly import resolve

# The handler module of a function -> the model its cold start parses the environment with.
MODELS: dict[str, type[FunctionConfig]] = {
    "functions.inference.handler": InferenceConfig,
    "functions.inference.async_worker": WorkerConfig,
    "functions.inference.async_fallback": WorkerConfig,
    "functions.inference.batch_handler": WorkerConfig,
    "functions.monitor.handler": MonitorConfig,
    "functions.retrain.handler": RetrainConfig,
    "functions.retrain.control": RetrainConfig,
    "functions.rollout.handler": RolloutConfig,
}
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


class _Tokens(dict[str, str]):
    """Any Ref resolves to a placeholder ARN-like value (what CloudFormation would put there)."""

    def __missing__(self, key: str) -> str:
        return f"arn:aws:placeholder:us-east-1:123456789012:{key}"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_environment_is_its_config_model(templates: dict[str, Template], stage: str) -> None:
    functions = {
        key: resource["Properties"]
        for key, resource in templates[stage].find_resources("AWS::Lambda::Function").items()
        if str(resource["Properties"].get("Runtime", "")).startswith("python")
    }
    assert len(functions) == 17
    for key, properties in functions.items():
        model = MODELS[properties["Handler"].rsplit(".", 1)[0]]
        variables = properties["Environment"]["Variables"]
        assert set(variables) - POWERTOOLS <= model.variable_names(), (key, set(variables) - model.variable_names())
        environ = {name: resolve(value, _Tokens()) for name, value in variables.items()}
        model.from_environ(environ)  # a value the model refuses would fail the cold start


def test_a_model_writes_what_it_reads() -> None:
    config = RetrainConfig(
        artifacts_bucket="bucket", live_pointer_parameter="/p", code_revision="x", recipe="model.recipe",
        policy=RetrainPolicy(gate=GatePolicy(floor=0.9), cooldown_minutes=30),
    )  # fmt: skip
    variables = config.to_environment()
    # The retrain section travels nested, as the stage declares it, the gate's policy inside it.
    policy = json.loads(variables["RETRAIN_POLICY"])
    assert policy["cooldown_minutes"] == 30 and policy["rollback_window_minutes"] == 60
    assert policy["gate"] == {
        "tolerance": 0.01,
        "floor": 0.9,
        "allow_incompatible_spec": False,
        "max_gap_increase": None,
    }
    assert RetrainConfig.from_environ(variables) == config
    assert RetrainConfig.from_environ({**variables, "CODE_REVISION": ""}).code_revision is None


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_retrain_functions_train_the_stage_recipe(templates: dict[str, Template], stage: str) -> None:
    recipes = {
        properties["FunctionName"]: properties["Environment"]["Variables"].get("RECIPE")
        for properties in (
            resource["Properties"] for resource in templates[stage].find_resources("AWS::Lambda::Function").values()
        )
        if str(properties.get("Handler", "")).startswith("functions.retrain.")
    }

    assert recipes and set(recipes.values()) == {load_settings(stage).recipe}, recipes


def test_a_stage_recipe_setting_reaches_the_retrain_environment() -> None:
    settings = with_overrides(load_settings("dev"), {"recipe": "model.examples.penguins"})
    names = ResourceNames.of(settings, account="123456789012", region=settings.region)

    environment = retrain_environment(settings, names)

    assert environment["RECIPE"] == "model.examples.penguins"
    assert RetrainConfig.from_environ(environment).recipe == "model.examples.penguins"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_logs_json_without_lambdas_info_platform_lines(
    templates: dict[str, Template], stage: str
) -> None:
    # JSON format with the system level at WARN drops START/END/REPORT (benchmarks/cost.py prices them);
    # the application level is INFO, as Powertools' own, or EMF and capture lines (read as INFO) would be dropped.
    functions = templates[stage].find_resources("AWS::Lambda::Function")
    python = [
        f["Properties"] for f in functions.values() if str(f["Properties"].get("Runtime", "")).startswith("python")
    ]
    assert len(python) == 17
    for properties in python:
        config = properties["LoggingConfig"]
        assert (config["LogFormat"], config["ApplicationLogLevel"], config["SystemLogLevel"]) == (
            "JSON",
            "INFO",
            "WARN",
        )
        assert properties["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == config["ApplicationLogLevel"]
