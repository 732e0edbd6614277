#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy -c stage=dev` builds the stack of one stage (`-c pipeline=true`: its
deploy role for the GitHub workflows, infra/pipeline_access.py)."""

from __future__ import annotations

import sys

from aws_cdk import App

from infra.app import FEATURE_FLAGS, build_app, build_pipeline_access, wants_pipeline_access
from stage.settings import SettingsError


def main() -> int:
    try:
        app = App(post_cli_context=FEATURE_FLAGS)
        if wants_pipeline_access(app):  # -c pipeline=true: the stage's deploy role, not the stage
            build_pipeline_access(app)
        else:
            build_app(app)
    except SettingsError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
