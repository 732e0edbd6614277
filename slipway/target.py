"""Where a `slipway` command acts: real AWS, or the local stack when AWS_ENDPOINT_URL is set."""

from __future__ import annotations

import os
from dataclasses import dataclass

from botocore.exceptions import ClientError

from functions.adapters import factory
from functions.adapters.s3_objects import error_code
from functions.core.data_source import DataSource
from functions.core.registry import Registry
from functions.retrain.config import RetrainConfig
from stage.names import ResourceNames
from stage.settings import SettingsError, StageSettings, load_settings

_DATA_SOURCE = RetrainConfig.variable("data_source")


@dataclass(frozen=True)
class Target:
    """One stage's settings, resource names and registry."""

    settings: StageSettings
    names: ResourceNames

    @property
    def local(self) -> bool:
        return bool(os.environ.get("AWS_ENDPOINT_URL"))

    def registry(self) -> Registry:
        return factory.registry(self.names.artifacts_bucket, self.names.live_pointer_parameter)

    def data_source(self) -> DataSource:
        """Where the stage's pipeline reads its training data: as deployed (its Prepare function's configuration),
        so a training by hand reads what the pipeline reads; cdk.json's `data` before the stage is deployed."""
        function = self.names.retrain_function("prepare")
        try:
            configuration = factory.client("lambda").get_function_configuration(FunctionName=function)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return self.settings.data
        declared = configuration.get("Environment", {}).get("Variables", {}).get(_DATA_SOURCE)
        return DataSource.model_validate_json(declared) if declared else self.settings.data

    def deployed_settings(self) -> StageSettings:
        """The stage's settings with its data source as deployed (a monitor cycle run from here takes its labels)."""
        return self.settings.model_copy(update={"data": self.data_source()})


def resolve(stage: str) -> Target:
    """The stage's target; the clients of `functions.adapters.factory` are pointed at the stage's region.

    The account comes from STS, so names match what `cdk deploy` created (moto
    answers with its own account, which the local stack's names use too).
    """
    settings = load_settings(stage)
    defaults: dict[str, str] = {}
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        defaults["region_name"] = settings.region
    if os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # moto and emulators accept any credentials; a laptop without AWS ones must still reach them.
        defaults.update(aws_access_key_id="local", aws_secret_access_key="local")
    factory.use_defaults(**defaults)
    account = factory.client("sts").get_caller_identity()["Account"]
    if settings.account and settings.account != account and not os.environ.get("AWS_ENDPOINT_URL"):
        raise SettingsError(
            f"stage {stage!r} is in account {settings.account} (its `account` setting), but these credentials are "
            f"of account {account}: use the stage's credentials"
        )
    return Target(settings, ResourceNames.of(settings, account=account, region=settings.region))


def other_stage(stage: str, *, caller_account: str) -> Target:
    """Another stage's target, seen from credentials of `caller_account`: its own account when it declares one."""
    settings = load_settings(stage)
    account = settings.account if settings.account and not os.environ.get("AWS_ENDPOINT_URL") else caller_account
    return Target(settings, ResourceNames.of(settings, account=account, region=settings.region))
