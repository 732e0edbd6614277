"""Build the CDK app of one stage: settings from the app's context, cdk-nag, the stack."""

from __future__ import annotations

import json
from typing import Any

import cdk_nag
from aws_cdk import App, Aws, Environment, Tags, Validations

from infra.pipeline_access import PipelineAccessStack
from infra.stack import SlipwayStack
from stage.names import COST_TAG, ResourceNames
from stage.settings import SettingsError, StageSettings, settings_from_context

DEFAULT_STAGE = "dev"
CONTEXT_KEYS = ("slipway:project", "slipway:defaults", "slipway:stages", "slipway:emulator")

# Feature flags this app relies on, whatever cdk.json says.
FEATURE_FLAGS = {
    # Server access logs are delivered through a bucket policy, not the legacy ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def stage_settings(app: App, stage: str | None = None) -> StageSettings:
    """The validated settings of `stage`, by default the stage named by `-c stage=...` (default dev)."""
    context: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        value = app.node.try_get_context(key)
        if isinstance(value, str) and key != "slipway:project":
            # `cdk -c key=value` passes strings; structured settings arrive as JSON.
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"context {key!r} given with -c is not valid JSON: {exc}") from exc
        if value is not None:
            context[key] = value
    stage = stage or app.node.try_get_context("stage") or DEFAULT_STAGE
    emulator = str(app.node.try_get_context("emulator") or "false").lower() == "true"
    return settings_from_context(context, str(stage), emulator=emulator)


def build_app(app: App | None = None) -> tuple[App, SlipwayStack]:
    """Add the stage's stack and the cdk-nag checks to `app` (a new App by default)."""
    app = app or App(post_cli_context=FEATURE_FLAGS)
    settings = stage_settings(app)
    names = ResourceNames.of(settings, account=Aws.ACCOUNT_ID, region=Aws.REGION)
    stack = SlipwayStack(
        app,
        names.stack,
        stack_name=names.stack,
        description=f"Slipway {settings.stage}: model serving, storage and alarms",
        env=Environment(region=settings.region),
        settings=settings,
        names=names,
    )
    Tags.of(stack).add(COST_TAG, settings.stage)
    Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    return app, stack


def wants_pipeline_access(app: App) -> bool:
    """Whether `-c pipeline=true` asks for the stage's pipeline access stack instead of the stage's stack."""
    return str(app.node.try_get_context("pipeline") or "false").lower() == "true"


def build_pipeline_access(app: App | None = None) -> tuple[App, PipelineAccessStack]:
    """Add the stage's pipeline access stack (GitHub's OIDC provider, its deploy role) and cdk-nag to `app`."""
    app = app or App(post_cli_context=FEATURE_FLAGS)
    settings = stage_settings(app)
    account = settings.account or Aws.ACCOUNT_ID

    def names_of(other: StageSettings) -> ResourceNames:
        return ResourceNames.of(other, account=other.account or account, region=other.region)

    names = names_of(settings)
    source = stage_settings(app, settings.pipeline.release_from) if settings.pipeline.release_from else None
    release_to = [stage_settings(app, stage) for stage in settings.pipeline.release_to]
    stack = PipelineAccessStack(
        app,
        names.pipeline_access_stack,
        stack_name=names.pipeline_access_stack,
        description=f"Slipway {settings.stage}: GitHub's OIDC provider and the pipeline's deploy role",
        env=Environment(account=settings.account, region=settings.region),
        settings=settings,
        names=names,
        source=(source, names_of(source)) if source else None,
        release_to=[(other, names_of(other)) for other in release_to],
    )
    Tags.of(stack).add(COST_TAG, settings.stage)
    Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    return app, stack
