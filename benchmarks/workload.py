"""What every section measures on: one trained bundle, the naive pipeline, and the request bodies.

Built once per run so that every figure comes from the same model and the same rows. On request
it also trains the tree ensembles of benchmarks/deployed_models.py on the same data and split,
each with its naive pipeline, for the sections that compare models.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import train_test_split

from benchmarks.deployed_models import BUILDS, recipe_with
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.core.features import encode_columns
from functions.core.registry import LivePointer, Registry
from functions.training.train import HOLDOUT_SHARE, Bundle, load_recipe, load_table, train_bundle
from stage.environments import inference_environment
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import StageSettings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STAGE = "dev"
BATCH_ROWS = 1000
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@contextlib.contextmanager
def offline_environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """`overrides`, then fake credentials, in the environment; no endpoint or profile; fresh clients; all restored."""
    from functions.adapters import factory

    variables = {**overrides, **FAKE_CREDENTIALS}
    saved = {key: os.environ.get(key) for key in (*variables, "AWS_ENDPOINT_URL", "AWS_PROFILE")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(variables)
    factory.reset_clients()
    try:
        yield
    finally:
        factory.reset_clients()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


EXAMPLE_LABEL = "example"


@dataclass(frozen=True)
class ServedModel:
    """One model as both handlers serve it: its label in the table, its bundle and the naive baseline's pickle."""

    label: str
    bundle: Bundle
    naive_model_path: Path


@dataclass(frozen=True)
class Workload:
    """The bundle, the naive baseline's pickle and the request bodies every section uses."""

    bundle: Bundle
    names: ResourceNames
    handler_env: dict[str, str]
    naive_model_path: Path
    one_row_bodies: list[str]  # one body per row of the example data
    batch_bodies: list[str]  # BATCH_ROWS rows each, cycling through the example data
    workdir: Path
    extra_models: tuple[ServedModel, ...] = ()  # the deployed_models, when asked for

    @property
    def models(self) -> tuple[ServedModel, ...]:
        """The example model first, then the extra ones."""
        return (ServedModel(EXAMPLE_LABEL, self.bundle, self.naive_model_path), *self.extra_models)


def build_workload(workdir: Path | None = None, *, extra_models: bool = False) -> Workload:
    """Train the example recipe once, fit the naive pipeline on the same split, and write the bodies.

    With `extra_models`, the same for every model of benchmarks/deployed_models.py.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="slipway-bench-"))
    recipe = load_recipe()
    bundle = train_bundle(recipe)
    columns, target = load_table(recipe)
    naive_model_path = workdir / "naive_pipeline.joblib"
    _fit_naive(recipe, bundle, columns, target, naive_model_path)
    extras = []
    for index, (label, build) in enumerate(BUILDS.items() if extra_models else ()):
        extra_recipe = recipe_with(build, label)
        extra_bundle = train_bundle(extra_recipe)
        extra_path = workdir / f"naive_pipeline_{index + 1}.joblib"
        _fit_naive(extra_recipe, extra_bundle, columns, target, extra_path)
        extras.append(ServedModel(label, extra_bundle, extra_path))

    feature_names = bundle.manifest.feature_spec.names
    rows = [{name: float(columns[name][index]) for name in feature_names} for index in range(len(target))]
    one_row_bodies = [json.dumps({"instances": [row]}) for row in rows]
    batch_bodies = [
        json.dumps({"instances": [rows[(offset + i) % len(rows)] for i in range(BATCH_ROWS)]})
        for offset in (0, 137, 274, 411)
    ]

    settings = load_settings(STAGE)
    names = ResourceNames.of(settings, account=LOCAL_ACCOUNT, region=REGION)
    return Workload(
        bundle=bundle,
        names=names,
        handler_env=_handler_env(settings, names),
        naive_model_path=naive_model_path,
        one_row_bodies=one_row_bodies,
        batch_bodies=batch_bodies,
        workdir=workdir,
        extra_models=tuple(extras),
    )


def _fit_naive(recipe, bundle: Bundle, columns, target, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The recipe's pipeline fitted on the same training split as the bundle, pickled with joblib."""
    spec = bundle.manifest.feature_spec
    encoded = encode_columns(spec, columns)
    target = np.asarray(target).astype(str)
    x_train, _, y_train, _ = train_test_split(
        encoded, target, test_size=HOLDOUT_SHARE, random_state=int(recipe.SEED), stratify=target
    )
    pipeline = recipe.build(int(recipe.SEED)).fit(x_train, y_train)
    joblib.dump((pipeline, spec.names), path)


def _handler_env(settings: StageSettings, names: ResourceNames) -> dict[str, str]:
    """The inference function's environment as the CDK app sets it, with X-Ray off (no daemon here)."""
    return {**inference_environment(settings, names), "POWERTOOLS_TRACE_DISABLED": "1"}


def seed_registry(s3: object, ssm: object, workload: Workload) -> None:
    """Create the bucket and live pointer as the CDK app does, then register and promote the bundle."""
    names = workload.names
    s3.create_bucket(Bucket=names.artifacts_bucket)  # type: ignore[attr-defined]
    ssm.put_parameter(  # type: ignore[attr-defined]
        Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
    )
    registry = Registry(S3ModelStore(s3, names.artifacts_bucket), SsmPointerStore(ssm, names.live_pointer_parameter))
    registry.register(workload.bundle.manifest, workload.bundle.onnx_bytes)
    registry.promote(workload.bundle.version, "benchmark")
