"""The retrain state machine's Lambda steps: each parses its input, calls one use case, returns its output.

An input that is not the step's model raises MalformedEvent, which the state machine never
retries (stage/workflows/retrain.py retries only transient errors): it is caught and notified.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters import factory
from functions.adapters.athena_queries import AthenaQueries
from functions.adapters.lake_objects import S3Source
from functions.adapters.retrain_store import S3RetrainStore, labelled_row_source
from functions.core.event_input import parse_event
from functions.core.registry import Registry
from functions.retrain import steps
from functions.retrain.config import config
from functions.retrain.schemas import CollectInput, EvaluateInput, PrepareInput, TrainInput, VersionInput
from functions.training.train import load_recipe

logger = Logger()
tracer = Tracer()


@cache
def _store() -> S3RetrainStore:
    return S3RetrainStore(factory.client("s3"), config().artifacts_bucket)


def reset() -> None:
    """Forget the configuration and store read from the environment (the local stack sets a new one)."""
    config.cache_clear()
    _store.cache_clear()


def _registry() -> Registry:
    return factory.registry(config().artifacts_bucket, config().live_pointer_parameter)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def prepare_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(PrepareInput, event)
    settings = config()
    source = settings.data_source
    prepared = steps.prepare(
        _store(),
        S3Source(factory.client("s3")),
        labelled_row_source(factory.client("s3"), settings.artifacts_bucket),
        source,
        artifacts_bucket=settings.artifacts_bucket,
        run_id=request.run_id,
        reason=request.reason,
        recipe=load_recipe(settings.recipe) if source.kind == "recipe" else None,
        queries=AthenaQueries(factory.client("athena")) if source.kind == "athena" else None,
        caps=settings.label_caps,
    )
    logger.info("training data prepared", extra=prepared.model_dump(mode="json"))
    return prepared.model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def train_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(TrainInput, event)
    recipe = load_recipe(config().recipe)
    return steps.train(_store(), recipe, request.data, code_revision=config().code_revision).model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def collect_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Engine 'sagemaker': the training job's candidate, checked and stored for Evaluate."""
    request = parse_event(CollectInput, event)
    return steps.collect(_store(), request.data, request.training_job).model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def evaluate_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(EvaluateInput, event)
    decision = steps.evaluate(_store(), _registry(), config().gate_policy, request.data, request.candidate)
    logger.info("gate decision", extra=decision.model_dump(mode="json"))
    return decision.model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def register_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(VersionInput, event)
    return steps.register(_store(), _registry(), request.version).model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def promote_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(VersionInput, event)
    return steps.promote(_registry(), request.version, request.reason).model_dump(mode="json")
