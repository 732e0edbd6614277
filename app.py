#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy -c stage=dev` builds the stack of one stage."""

from __future__ import annotations

import sys

from infra.app import build_app
from stage.settings import SettingsError


def main() -> int:
    try:
        app, _stack = build_app()
    except SettingsError as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
