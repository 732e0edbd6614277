"""Fixtures of the retrain step tests: the example recipe's table prepared as a run."""

from __future__ import annotations

import pytest

from functions.adapters import factory
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.data_source import DataSource
from functions.retrain import steps
from functions.retrain.schemas import PreparedData
from functions.training.train import load_recipe
from stage.names import ResourceNames


class _NoLabels:
    def labelled_rows(self, since: object = None) -> list[object]:
        return []


@pytest.fixture
def run_table(aws: None, names: ResourceNames) -> tuple[S3RetrainStore, PreparedData]:
    """The artifacts store, and run-1 prepared from the example recipe's table (no labelled rows)."""
    store = S3RetrainStore(factory.client("s3"), names.artifacts_bucket)
    prepared = steps.prepare(
        store, S3Source(factory.client("s3")), _NoLabels(), DataSource(), artifacts_bucket=names.artifacts_bucket,
        run_id="run-1", reason="test", recipe=load_recipe(),
    )  # fmt: skip
    return store, prepared
