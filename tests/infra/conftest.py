"""Synthesize each stage once per session, in-process and with bundling skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_cdk.assertions import Template
from synth_support import STAGES, cdk_context, iam_context, lake_context, synth

from stage.settings import StageSettings, settings_from_context


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Template]]:
    """Templates by name: 'dev', 'prod', 'dev-iam' (dev with api.auth=iam) and 'dev-lake' (dev with data.kind s3)."""
    out = tmp_path_factory.mktemp("assembly")
    result = {stage: synth(cdk_context(), stage, out / stage) for stage in STAGES}
    result["dev-iam"] = synth(iam_context(), "dev", out / "dev-iam")
    result["dev-lake"] = synth(lake_context(), "dev", out / "dev-lake")
    yield result


@pytest.fixture(scope="session")
def settings() -> dict[str, StageSettings]:
    context = cdk_context()
    return {stage: settings_from_context(context, stage) for stage in STAGES}
