"""The retrain state machine's Lambda steps: each parses its input, calls one use case, returns its output.

An input that is not the step's model raises MalformedEvent, which the state machine never
retries (stage/workflows/retrain.py retries only transient errors): it is caught and notified.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Tracer

from functions.adapters import factory
from functions.adapters.athena_queries import AthenaQueries
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore, labelled_row_source
from functions.core.registry import Registry
from functions.core.step_handler import StepHandlers
from functions.retrain import steps
from functions.retrain.config import config
from functions.retrain.schemas import (
    Candidate,
    CollectInput,
    DecisionSummary,
    EvaluateInput,
    PreparedData,
    PrepareInput,
    Promoted,
    Registered,
    TrainInput,
    VersionInput,
)
from functions.training.train import load_recipe

logger = Logger()
tracer = Tracer()
step_handler = StepHandlers(logger, tracer)


@cache
def _store() -> S3RetrainStore:
    return S3RetrainStore(factory.client("s3"), config().artifacts_bucket)


def reset() -> None:
    """Forget the configuration and store read from the environment (the local stack sets a new one)."""
    config.cache_clear()
    _store.cache_clear()


def _registry() -> Registry:
    return factory.registry(config().artifacts_bucket, config().live_pointer_parameter)


@step_handler(PrepareInput, logged="training data prepared")
def prepare_handler(request: PrepareInput) -> PreparedData:
    settings = config()
    source = settings.data_source
    return steps.prepare(
        _store(),
        S3Source(factory.client("s3")),
        labelled_row_source(factory.client("s3"), settings.artifacts_bucket),
        source,
        artifacts_bucket=settings.artifacts_bucket,
        run_id=request.run_id,
        reason=request.reason,
        recipe=load_recipe(settings.recipe) if source.kind == "recipe" else None,
        queries=AthenaQueries(factory.client("athena")) if source.kind == "athena" else None,
        caps=settings.policy.label_caps,
    )


@step_handler(TrainInput)
def train_handler(request: TrainInput) -> Candidate:
    recipe = load_recipe(config().recipe)
    return steps.train(_store(), recipe, request.data, code_revision=config().code_revision)


@step_handler(CollectInput)
def collect_handler(request: CollectInput) -> Candidate:
    """Engine 'sagemaker': the training job's candidate, checked and stored for Evaluate."""
    return steps.collect(_store(), request.data, request.training_job)


@step_handler(EvaluateInput, logged="gate decision")
def evaluate_handler(request: EvaluateInput) -> DecisionSummary:
    return steps.evaluate(_store(), _registry(), config().policy.gate, request.data, request.candidate)


@step_handler(VersionInput)
def register_handler(request: VersionInput) -> Registered:
    return steps.register(_store(), _registry(), request.version)


@step_handler(VersionInput)
def promote_handler(request: VersionInput) -> Promoted:
    return steps.promote(_registry(), request.version, request.reason)
