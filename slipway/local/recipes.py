"""Other candidates from the example recipe, for demos, benchmarks and tests of a rollout.

`variant(seed_offset=1)` trains the same recipe under another seed: another version that
answers nearly alike (a good candidate). `variant(shuffle_labels=True)` trains it on its
labels shuffled once: a model that learned nothing true (a candidate a rollout must refuse).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from functions.training.train import DEFAULT_RECIPE, load_recipe


def variant(*, seed_offset: int = 0, shuffle_labels: bool = False, recipe_name: str = DEFAULT_RECIPE) -> Any:
    """The recipe with its SEED moved by `seed_offset`, and its labels shuffled when asked; a recipe like any."""
    recipe = load_recipe(recipe_name)
    copy = types.SimpleNamespace(**{name: getattr(recipe, name) for name in dir(recipe) if not name.startswith("_")})
    copy.SEED = recipe.SEED + seed_offset
    copy.__name__ = f"{recipe_name} (seed +{seed_offset}{', labels shuffled' if shuffle_labels else ''})"
    if shuffle_labels:
        frame, target = recipe.load_data()
        labels = np.random.default_rng(copy.SEED).permutation(np.asarray(target))
        copy.load_data = lambda: (frame, labels)
    return copy
