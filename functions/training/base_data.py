"""The base training data set: the recipe's `load_data()`, stored once where the retrain pipeline's Prepare reads it."""

from __future__ import annotations

from typing import Protocol

from functions.core import layout
from functions.training.dataset import TrainingTable
from functions.training.train import load_recipe, load_table


class ObjectStore(Protocol):
    """Bytes by key (the artifacts bucket; `functions.adapters.retrain_store.S3RetrainStore`)."""

    def get(self, key: str) -> bytes: ...
    def put(self, key: str, body: bytes, content_type: str = ...) -> None: ...


def seed_base_data(store: ObjectStore, recipe_name: str = "model.recipe", *, overwrite: bool = False) -> bool:
    """Write the recipe's load_data() as the base training data set; False when one is already there."""
    if not overwrite:
        try:
            store.get(layout.BASE_DATA_KEY)
            return False
        except KeyError:
            pass
    columns, target = load_table(load_recipe(recipe_name))
    store.put(layout.BASE_DATA_KEY, TrainingTable(columns, target).to_jsonl(), "application/x-ndjson")
    return True
