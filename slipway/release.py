"""`slipway release`: copy a model that passed one stage's gate into another stage and let that stage's policy
make it live (functions.core.release holds the rules; this module wires the two stages' stores)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import boto3

from functions.adapters import factory
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.adapters.release_store import S3ReleaseEvidence, S3ReleaseRecords
from functions.core.registry import Registry
from functions.core.release import ReleaseRecord, release
from slipway.target import Target, other_stage

Made = Literal["promoted", "rollout", "registered", "unchanged"]


@dataclass(frozen=True)
class Released:
    """What a release did: its record, and how the target stage took the version (with its rollout's run)."""

    record: ReleaseRecord
    made: Made
    execution: str | None = None


def release_version(
    target: Target,
    source_stage: str,
    version: str,
    *,
    reason: str,
    allow_spec_change: bool = False,
    start_rollout: Any,
) -> Released:
    """Release `version` from `source_stage` into `target`, then apply the target's `retrain.rollout`:
    promote (immediate, or the stage's first model), start its rollout (shadow, canary), or leave it to a
    person (manual). `start_rollout(target, version, reason)` returns the rollout's execution ARN."""
    if source_stage == target.settings.stage:
        raise ValueError(f"--from names the target stage {source_stage!r}: release from another stage")
    caller_account = target.names.account
    source = other_stage(source_stage, caller_account=caller_account)
    s3, ssm = source_clients(source, caller_account)
    registry = target.registry()
    record = release(
        Registry(
            S3ModelStore(s3, source.names.artifacts_bucket), SsmPointerStore(ssm, source.names.live_pointer_parameter)
        ),
        registry,
        S3ReleaseEvidence(s3, source.names.artifacts_bucket),
        S3ReleaseRecords(factory.client("s3"), target.names.artifacts_bucket),
        version=version,
        source_stage=source_stage,
        target_stage=target.settings.stage,
        reason=reason,
        allow_spec_change=allow_spec_change,
    )
    why = f"released from {source_stage}: {reason}"
    policy = target.settings.retrain.rollout
    if record.target_live == version:
        return Released(record, "unchanged")
    if record.target_live is None or policy == "immediate":
        registry.promote(version, why)
        return Released(record, "promoted")
    if policy == "manual":
        return Released(record, "registered")
    return Released(record, "rollout", start_rollout(target, version, why))


def source_clients(source: Target, caller_account: str) -> tuple[Any, Any]:
    """S3 and SSM clients for the source stage, as a release reads it: the caller's own when it is in the same
    account, else through the source's release reader role (its deploy role's trust names this stage's deploy
    role)."""
    if source.names.account == caller_account:
        return factory.client("s3"), factory.client("ssm")
    partition = boto3.session.Session().get_partition_for_region(source.names.region)
    role = f"arn:{partition}:iam::{source.names.account}:role/{source.names.release_reader_role}"
    credentials = factory.client("sts").assume_role(RoleArn=role, RoleSessionName="slipway-release")["Credentials"]
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
        "region_name": source.names.region,
    }
    return boto3.client("s3", **keys), boto3.client("ssm", **keys)
