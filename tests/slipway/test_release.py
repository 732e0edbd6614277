"""`slipway release` on moto: two stages' registries (dev, prod), the copy, its record, and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import orjson
import pytest

from functions.adapters import factory
from functions.adapters.live_pointer import SsmPointerStore
from functions.adapters.model_store import S3ModelStore
from functions.adapters.release_store import S3ReleaseRecords
from functions.adapters.retrain_store import S3RetrainStore
from functions.core import layout
from functions.core.errors import RegistryError
from functions.core.gate import CandidateEvidence, GateDecision
from functions.core.registry import LivePointer, Registry
from functions.core.release import ReleaseRefused
from functions.training.train import Bundle
from slipway.cli import main, start_rollout
from slipway.release import Released, release_version, source_clients
from slipway.target import Target, other_stage, resolve
from stage.names import LOCAL_ACCOUNT, ResourceNames
from stage.settings import SettingsError, load_settings, with_overrides
from tests.conftest import REGION

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def prod(aws: None) -> Target:
    """The prod stage beside dev (the `aws` fixture's): its bucket, live pointer and rollout state machine."""
    settings = load_settings("prod")
    names = ResourceNames.of(settings, account=LOCAL_ACCOUNT, region=REGION)
    boto3.client("s3").create_bucket(Bucket=names.artifacts_bucket)
    boto3.client("ssm").put_parameter(
        Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
    )
    boto3.client("stepfunctions").create_state_machine(
        name=names.rollout_state_machine,
        definition='{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}',
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/rollout",
    )
    return Target(settings, names)


@pytest.fixture
def dev(registry: Registry, names: ResourceNames) -> Registry:
    return registry


def gated(dev: Registry, names: ResourceNames, bundle: Bundle, *, verdict: str = "promote", s3: Any = None) -> None:
    """`bundle` registered in dev, passed (or refused) by its gate, and promoted there."""
    dev.register(bundle.manifest, bundle.onnx_bytes)
    S3RetrainStore(s3 or factory.client("s3"), names.artifacts_bucket).put_decision(
        GateDecision(
            run_id="run-1",
            decided_at=T0,
            verdict=verdict,  # type: ignore[arg-type]
            reasons=["no live model yet"],
            metric=bundle.manifest.metric,
            higher_is_better=True,
            candidate=CandidateEvidence(version=bundle.version, score=bundle.manifest.metrics[bundle.manifest.metric]),
            live=None,
            holdout_rows=40,
            tolerance=0.01,
            floor=None,
            parity_passed=True,
            spec_compatible=True,
            data_hash="abc",
            data_rows=200,
        )
    )
    dev.promote(bundle.version, "gate passed")


def snapshot(target: Target) -> dict[str, Any]:
    """Everything of the target a release may write: bucket keys, the pointer and its history."""
    listed = boto3.client("s3").list_objects_v2(Bucket=target.names.artifacts_bucket)
    history = boto3.client("ssm").get_parameter_history(Name=target.names.live_pointer_parameter)["Parameters"]
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=f"arn:aws:states:{REGION}:{LOCAL_ACCOUNT}:stateMachine:{target.names.rollout_state_machine}"
    )["executions"]
    return {
        "keys": sorted(item["Key"] for item in listed.get("Contents", [])),
        "history": [entry["Value"] for entry in history],
        "executions": len(executions),
    }


def release(target: Target, version: str, **kwargs: Any) -> Released:
    def rollout(target: Target, version: str, reason: str) -> str:
        return start_rollout(target, version, reason, bake_seconds=60, settle_seconds=0)[0]

    return release_version(target, "dev", version, reason="weekly release", start_rollout=rollout, **kwargs)


def test_a_release_copies_the_identical_bundle_records_where_it_came_from_and_promotes_the_first_model(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle
) -> None:
    gated(dev, names, bundle)
    run = "20261201T100000-abcd1234"
    boto3.client("s3").put_object(
        Bucket=names.artifacts_bucket,
        Key=f"{layout.ROLLOUT_PREFIX}{run}/outcome.json",
        Body=orjson.dumps(
            {
                "candidate": bundle.version,
                "action": "promote",
                "live": bundle.version,
                "reason": "passed every phase",
                "at": T0.isoformat(),
            }
        ),
    )

    released = release(prod, bundle.version)

    assert released.made == "promoted"  # prod had no live model: nothing to roll out beside
    target = prod.registry()
    assert target.store.get_bundle(bundle.version) == (bundle.manifest, bundle.onnx_bytes)
    pointer = target.live()
    assert pointer.version == bundle.version
    assert pointer.digest == bundle.manifest.content_digest(bundle.onnx_bytes) == released.record.digest
    assert pointer.reason == "released from dev: weekly release"
    [record] = S3ReleaseRecords(factory.client("s3"), prod.names.artifacts_bucket).releases(bundle.version)
    assert record == released.record
    assert (record.source_stage, record.target_stage, record.reason) == ("dev", "prod", "weekly release")
    assert record.gate.candidate.version == bundle.version and record.gate.verdict == "promote"
    assert record.rollout is not None and (record.rollout.run_id, record.rollout.action) == (run, "promote")
    assert record.source_promotion.version == bundle.version and record.source_promotion.reason == "gate passed"
    assert record.target_live is None


@pytest.fixture
def next_release(dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle, good: Bundle) -> Bundle:
    """`good`, passed by dev's gate after `bundle` was released to prod and made live there."""
    gated(dev, names, bundle)
    release(prod, bundle.version)
    gated(dev, names, good)
    return good


def test_a_release_beside_a_live_model_starts_the_target_stages_canary(
    prod: Target, bundle: Bundle, next_release: Bundle
) -> None:
    released = release(prod, next_release.version)

    assert prod.settings.retrain.rollout == "canary"
    assert released.made == "rollout" and released.execution is not None
    execution = boto3.client("stepfunctions").describe_execution(executionArn=released.execution)
    assert orjson.loads(execution["input"])["candidate"] == next_release.version
    pointer = prod.registry().live()
    assert pointer.version == bundle.version  # the rollout decides; live is untouched until then
    assert released.record.rollout is None  # dev promotes at once: no rollout there
    assert released.record.target_live == bundle.version


def test_a_stage_that_promotes_at_once_makes_the_release_live(
    prod: Target, bundle: Bundle, next_release: Bundle
) -> None:
    immediate = Target(with_overrides(prod.settings, {"retrain": {"rollout": "immediate"}}), prod.names)

    assert release(immediate, next_release.version).made == "promoted"
    pointer = prod.registry().live()
    assert (pointer.version, pointer.previous) == (next_release.version, bundle.version)
    assert release(immediate, next_release.version).made == "unchanged"  # a second run of the pipeline changes nothing


@pytest.mark.parametrize("verdict", [None, "refuse"])
def test_a_version_that_never_passed_the_source_gate_is_refused_and_nothing_is_written(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle, verdict: str | None
) -> None:
    if verdict is None:  # trained and promoted by hand
        dev.register(bundle.manifest, bundle.onnx_bytes)
        dev.promote(bundle.version, "by hand")
    else:
        gated(dev, names, bundle, verdict=verdict)
    before = snapshot(prod)

    with pytest.raises(ReleaseRefused, match=f"{bundle.version} never passed dev's gate"):
        release(prod, bundle.version)

    assert snapshot(prod) == before


def test_a_version_gated_but_never_live_in_the_source_is_refused(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle
) -> None:
    gated(dev, names, bundle)
    # A pointer whose history never made the version live (its rollout refused it, say).
    boto3.client("ssm").delete_parameter(Name=names.live_pointer_parameter)
    boto3.client("ssm").put_parameter(
        Name=names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String"
    )
    before = snapshot(prod)

    with pytest.raises(ReleaseRefused, match="passed dev's gate but was never live there"):
        release(prod, bundle.version)

    assert snapshot(prod) == before


def respecced(bundle: Bundle) -> Bundle:
    """`bundle` with its features in another order: a model prod's callers cannot call unchanged."""
    spec = bundle.manifest.feature_spec
    manifest = bundle.manifest.model_copy(
        update={
            "feature_spec": spec.model_copy(update={"features": tuple(reversed(spec.features))}),
            "feature_report": None,  # it names the features in spec order; it is optional and not hashed
        }
    )
    return Bundle(manifest=manifest.with_version(bundle.onnx_bytes), onnx_bytes=bundle.onnx_bytes)


def test_a_feature_spec_the_target_live_model_cannot_take_is_refused_unless_allowed(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle
) -> None:
    gated(dev, names, bundle)
    release(prod, bundle.version)
    changed = respecced(bundle)
    gated(dev, names, changed)
    before = snapshot(prod)

    with pytest.raises(ReleaseRefused, match=rf"{changed.version} cannot answer prod's requests.*features reordered"):
        release(prod, changed.version)
    assert snapshot(prod) == before

    released = release(prod, changed.version, allow_spec_change=True)
    assert released.made == "rollout"
    assert released.record.spec_differences == ["features reordered"]


def test_a_bundle_corrupted_on_its_way_is_refused_and_nothing_is_written(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle
) -> None:
    gated(dev, names, bundle)
    boto3.client("s3").put_object(  # what reaches prod is not what dev gated
        Bucket=names.artifacts_bucket, Key=layout.model_key(bundle.version), Body=bundle.onnx_bytes + b"\0"
    )
    before = snapshot(prod)

    with pytest.raises(ReleaseRefused, match=r"refused on arrival: .*does not match its content hash; nothing written"):
        release(prod, bundle.version)

    assert snapshot(prod) == before


def test_a_copy_that_does_not_match_after_it_landed_never_goes_live(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated(dev, names, bundle)
    put_bundle = S3ModelStore.put_bundle

    def corrupting(self: S3ModelStore, manifest: Any, onnx_bytes: bytes) -> bool:
        flipped = onnx_bytes[:-1] + bytes([onnx_bytes[-1] ^ 1])  # a bit flipped between the check and the disk
        return put_bundle(self, manifest, flipped)

    monkeypatch.setattr(S3ModelStore, "put_bundle", corrupting)
    before = snapshot(prod)

    with pytest.raises(
        RegistryError, match=r"the copy of .* in prod does not match its content hash: it cannot go live"
    ):
        release(prod, bundle.version)

    after = snapshot(prod)
    assert after["history"] == before["history"] and after["executions"] == before["executions"]
    assert not [key for key in after["keys"] if "/releases/" in key]  # no record of a release that did not happen


def test_the_command_releases_and_refuses_with_a_clear_message(
    dev: Registry, names: ResourceNames, prod: Target, bundle: Bundle, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.register(bundle.manifest, bundle.onnx_bytes)
    dev.promote(bundle.version, "by hand")
    assert main(["release", bundle.version, "--from", "dev", "--stage", "prod"]) == 1
    assert f"slipway: {bundle.version} never passed dev's gate" in capsys.readouterr().err

    gated(dev, names, bundle)
    assert main(["release", bundle.version, "--from", "dev", "--stage", "prod", "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert (shown["made"], shown["version"], shown["source_stage"]) == ("promoted", bundle.version, "dev")
    assert main(["release", bundle.version, "--from", "prod", "--stage", "prod"]) == 1
    assert "release from another stage" in capsys.readouterr().err


DEV_ACCOUNT = "111111111111"


def test_a_stage_in_another_account_is_read_through_its_release_reader(
    aws: None, prod: Target, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev_settings = load_settings("dev").model_copy(update={"account": DEV_ACCOUNT})
    monkeypatch.setattr("slipway.target.load_settings", lambda stage: dev_settings if stage == "dev" else None)
    source = other_stage("dev", caller_account=LOCAL_ACCOUNT)
    dev_names = source.names
    # moto keeps each account apart and answers the assumed role's credentials from its account: dev is seeded
    # in its own account through its release reader, the clients the release reads it with.
    s3, ssm = source_clients(source, LOCAL_ACCOUNT)
    s3.create_bucket(Bucket=dev_names.artifacts_bucket)
    ssm.put_parameter(Name=dev_names.live_pointer_parameter, Value=LivePointer().model_dump_json(), Type="String")
    dev = Registry(S3ModelStore(s3, dev_names.artifacts_bucket), SsmPointerStore(ssm, dev_names.live_pointer_parameter))
    gated(dev, dev_names, bundle, s3=s3)
    assert dev_names.artifacts_bucket not in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]

    released = release(prod, bundle.version)

    assert released.made == "promoted"
    assert prod.registry().store.get_bundle(bundle.version) == (bundle.manifest, bundle.onnx_bytes)
    assert released.record.gate.candidate.version == bundle.version


def test_commands_refuse_credentials_of_another_account_than_the_stages(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod_settings = load_settings("prod").model_copy(update={"account": "222222222222"})
    monkeypatch.setattr("slipway.target.load_settings", lambda stage: prod_settings)

    with pytest.raises(SettingsError, match=r"stage 'prod' is in account 222222222222 .* of account 123456789012"):
        resolve("prod")
