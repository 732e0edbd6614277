"""The registry over moto S3 and SSM: register, promote, rollback, summarise."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import boto3
import pytest

from functions.adapters import factory
from functions.adapters.live_pointer import LOCK_WAIT_SECONDS, SsmPointerStore
from functions.core import layout
from functions.core.errors import RegistryError
from functions.core.registry import LivePointer, Registry, summarise
from functions.training.train import Bundle
from stage.names import ResourceNames
from tests.functions.core.conftest import T0


def bucket_keys(names: ResourceNames) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=names.artifacts_bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_register_stores_the_graph_and_manifest_under_the_layout_keys(
    registry: Registry, bundle: Bundle, names: ResourceNames
) -> None:
    assert registry.register(bundle.manifest, bundle.onnx_bytes) is True

    version = bundle.version
    assert bucket_keys(names) == sorted([layout.model_key(version), layout.manifest_key(version)])
    assert layout.model_key(version) == f"models/{version}/model.onnx"
    assert layout.manifest_key(version) == f"models/{version}/manifest.json"
    s3 = boto3.client("s3")
    stored_graph = s3.get_object(Bucket=names.artifacts_bucket, Key=layout.model_key(version))["Body"].read()
    stored_manifest = s3.get_object(Bucket=names.artifacts_bucket, Key=layout.manifest_key(version))["Body"].read()
    assert stored_graph == bundle.onnx_bytes
    assert stored_manifest == bundle.manifest.to_json()
    assert registry.store.get_bundle(version) == (bundle.manifest, bundle.onnx_bytes)
    assert registry.store.list_versions() == [version]


def test_register_is_idempotent(registry: Registry, bundle: Bundle, names: ResourceNames) -> None:
    registry.register(bundle.manifest, bundle.onnx_bytes)
    keys = bucket_keys(names)

    assert registry.register(bundle.manifest, bundle.onnx_bytes) is False

    assert bucket_keys(names) == keys
    assert registry.store.list_versions() == [bundle.version]


def test_a_version_is_written_once_whoever_writes_it_again(registry: Registry, bundle: Bundle) -> None:
    registry.register(bundle.manifest, bundle.onnx_bytes)
    forged = bundle.manifest.model_copy(update={"metric": "accuracy"})  # the same version, other contents
    assert registry.store.put_bundle(forged, b"another graph") is False  # conditional writes: nothing replaced
    assert registry.store.get_bundle(bundle.version) == (bundle.manifest, bundle.onnx_bytes)


def test_a_half_written_bundle_is_completed_by_the_next_registration(
    registry: Registry, bundle: Bundle, names: ResourceNames
) -> None:
    # A crash between the graph and the manifest: the graph is there, the version is not registered.
    boto3.client("s3").put_object(
        Bucket=names.artifacts_bucket, Key=layout.model_key(bundle.version), Body=bundle.onnx_bytes
    )
    assert registry.register(bundle.manifest, bundle.onnx_bytes) is True
    assert registry.store.get_bundle(bundle.version) == (bundle.manifest, bundle.onnx_bytes)


def test_register_refuses_a_manifest_that_does_not_match_its_bytes(
    registry: Registry, bundle: Bundle, names: ResourceNames
) -> None:
    stale = bundle.manifest.model_copy(update={"metrics": {**bundle.manifest.metrics, "roc_auc": 0.1}})

    with pytest.raises(RegistryError, match=f"bundle '{bundle.version}' does not match its content hash"):
        registry.register(stale, bundle.onnx_bytes)
    with pytest.raises(RegistryError, match="does not match its content hash"):
        registry.register(bundle.manifest, bundle.onnx_bytes + b"\x00")

    assert bucket_keys(names) == []


def test_unknown_version_is_a_key_error_in_the_store(registry: Registry) -> None:
    with pytest.raises(KeyError):
        registry.store.get_manifest("0123456789abcdef")


def _pointer_to(registry: Registry, version: str, **move: Any) -> LivePointer:
    """The pointer to `version` as the registry writes it: its bundle's fallback and digest, and how it moved."""
    manifest, graph = registry.store.get_bundle(version)
    return LivePointer(version=version, fallback=manifest.fallback, digest=manifest.content_digest(graph), **move)


def test_promote_records_the_move_in_the_pointer(registry: Registry, bundle: Bundle, three: list[str]) -> None:
    a, b, _ = three
    registry.promote(a, "first", now=T0)

    pointer = registry.promote(b, "better roc_auc", now=T0.replace(hour=13))

    assert pointer == _pointer_to(
        registry, b, previous=a, action="promote", reason="better roc_auc", at=T0.replace(hour=13)
    )
    assert pointer.fallback is not None and pointer.fallback.label == "malignant"
    assert registry.live() == pointer


def test_first_promotion_has_no_previous_version(registry: Registry, three: list[str]) -> None:
    pointer = registry.promote(three[0], "first")

    assert pointer.previous is None
    assert pointer.at is not None and pointer.at.tzinfo is not None
    assert [entry.action for entry in registry.pointer.history()] == ["init", "promote"]


def test_promoting_the_live_version_again_writes_nothing(registry: Registry, three: list[str]) -> None:
    first = registry.promote(three[0], "first", now=T0)
    length = len(registry.pointer.history())

    again = registry.promote(three[0], "again", now=T0.replace(hour=14))

    assert again == first
    assert registry.live() == first
    assert len(registry.pointer.history()) == length


def test_the_pointer_records_the_full_digest_of_what_goes_live(
    registry: Registry, bundle: Bundle, three: list[str]
) -> None:
    pointer = registry.promote(three[0], "first")
    manifest, graph = registry.store.get_bundle(three[0])
    assert pointer.digest == manifest.content_digest(graph) and len(pointer.digest) == 64
    first = pointer.digest
    pointer = registry.start_rollout(three[1], "shadow", 10, "candidate")
    manifest, graph = registry.store.get_bundle(three[1])
    assert pointer.rollout is not None and pointer.rollout.digest == manifest.content_digest(graph)
    registry.promote(three[1], "second")
    assert registry.rollback("back").digest == first


def test_a_bundle_changed_in_the_bucket_cannot_go_live(
    registry: Registry, three: list[str], names: ResourceNames
) -> None:
    # The bucket policy refuses this overwrite in AWS; were it to happen, promotion still refuses the bundle.
    boto3.client("s3").put_object(Bucket=names.artifacts_bucket, Key=layout.model_key(three[1]), Body=b"tampered")
    with pytest.raises(RegistryError, match=f"bundle {three[1]} does not match its content hash"):
        registry.promote(three[1], "tampered")


def test_promote_of_an_unknown_version_names_the_registered_ones(registry: Registry, three: list[str]) -> None:
    registered = ", ".join(sorted(three))

    with pytest.raises(RegistryError, match=f"unknown model version 'nope'; registered: {registered}"):
        registry.promote("nope", "typo")

    assert registry.live().version is None


def test_promote_with_nothing_registered_says_none(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="registered: none"):
        registry.promote("nope", "typo")


def test_rollback_restores_the_previous_version(registry: Registry, three: list[str]) -> None:
    a, b, _ = three
    registry.promote(a, "first", now=T0)
    registry.promote(b, "second", now=T0)

    pointer = registry.rollback("b is worse", now=T0.replace(hour=15))

    assert pointer == _pointer_to(
        registry, a, previous=None, action="rollback", reason="b is worse", at=T0.replace(hour=15)
    )
    assert registry.live() == pointer


def test_repeated_rollbacks_walk_back_in_time(registry: Registry, three: list[str]) -> None:
    a, b, c = three
    for version in (a, b, c):
        registry.promote(version, f"promote {version}")

    first = registry.rollback("c is bad")
    second = registry.rollback("b is bad too")

    assert (first.version, first.previous) == (b, a)
    assert (second.version, second.previous) == (a, None)
    assert registry.live().version == a
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("and again")
    assert registry.live() == second


def test_rollback_with_no_predecessor_is_refused(registry: Registry, three: list[str]) -> None:
    with pytest.raises(RegistryError, match="nothing to roll back to: the live version has no predecessor"):
        registry.rollback("nothing live yet")

    registry.promote(three[0], "first")
    length = len(registry.pointer.history())
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("only one version")
    assert len(registry.pointer.history()) == length


def test_predecessor_is_what_was_live_before_the_version_last_became_live(registry: Registry, three: list[str]) -> None:
    a, b, c = three
    registry.promote(a, "1")
    registry.promote(b, "2")
    registry.promote(c, "3")
    registry.promote(b, "4")  # b again, now after c

    assert registry._predecessor_of(b) == c
    assert registry._predecessor_of(a) is None
    assert registry._predecessor_of("never-live") is None
    assert registry.rollback("undo 4").version == c


def test_every_write_is_kept_in_the_history(registry: Registry, three: list[str]) -> None:
    a, b, _ = three
    registry.promote(a, "1")
    registry.promote(b, "2")
    registry.rollback("3")

    history = registry.pointer.history()

    assert [(entry.action, entry.version, entry.reason) for entry in history] == [
        ("init", None, ""),
        ("promote", a, "1"),
        ("promote", b, "2"),
        ("rollback", a, "3"),
    ]


def test_summarise_marks_the_live_version(registry: Registry, bundle: Bundle, three: list[str]) -> None:
    registry.promote(three[1], "live")

    summaries = summarise(registry)

    assert [s.version for s in summaries] == sorted(three)
    assert [s.version for s in summaries if s.live] == [three[1]]
    by_version = {s.version: s for s in summaries}
    assert [by_version[v].score for v in three] == [0.91, 0.92, 0.93]
    for summary in summaries:
        assert summary.metric == "roc_auc"
        assert summary.rows == bundle.manifest.lineage.rows == 569
        assert summary.data_hash == bundle.manifest.lineage.data_hash[:12]


def test_summarise_with_nothing_live(registry: Registry, three: list[str]) -> None:
    assert not any(summary.live for summary in summarise(registry))


def test_missing_pointer_parameter_is_a_registry_error(registry: Registry, names: ResourceNames) -> None:
    boto3.client("ssm").delete_parameter(Name=names.live_pointer_parameter)

    with pytest.raises(RegistryError, match="does not exist; is the stack deployed"):
        registry.live()


def _consistent(history: list[LivePointer]) -> None:
    """Every entry follows from the one before it: nothing lost, nothing written twice."""
    for before, entry in itertools.pairwise(history):
        if entry.action == "promote":
            assert entry.previous == before.version, (before, entry)
            assert entry.version != before.version, "a promotion of the live version writes nothing"
        else:
            assert entry.version == before.previous, (before, entry)


def test_concurrent_promotions_and_rollbacks_keep_the_history_consistent(
    registry: Registry, three: list[str], names: ResourceNames
) -> None:
    """Eight writers at the same moment: the lock makes each read-and-write one step."""
    registry.promote(three[0], "first")
    registry.promote(three[1], "second")
    writers = [registry] + [factory.registry(names.artifacts_bucket, names.live_pointer_parameter) for _ in range(7)]
    start = threading.Barrier(len(writers))
    outcomes: list[str] = []

    def move(index: int) -> None:
        start.wait()
        try:
            if index % 4 == 3:
                writers[index].rollback(f"rollback {index}")
            else:
                writers[index].promote(three[index % 3], f"promote {index}")
            outcomes.append("moved")
        except RegistryError as exc:  # a rollback with no predecessor left is a clear refusal, not a loss
            outcomes.append(str(exc))

    threads = [threading.Thread(target=move, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    history = registry.pointer.history()
    _consistent(history)
    assert history[-1] == registry.live()
    assert len(outcomes) == len(writers)
    assert all(o == "moved" or "nothing to roll back to" in o for o in outcomes), outcomes
    assert not boto3.client("ssm").get_parameters(Names=[names.live_pointer_parameter + "-lock"])["Parameters"]


def test_a_held_lock_makes_a_second_writer_wait_then_refuse(
    registry: Registry, three: list[str], names: ResourceNames
) -> None:
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    other = SsmPointerStore(boto3.client("ssm"), names.live_pointer_parameter, clock=lambda: now[0], sleep=sleep)
    with registry.pointer.locked(), pytest.raises(RegistryError, match="being moved by another promotion or rollback"):
        Registry(registry.store, other).promote(three[0], "blocked")
    assert sum(waits) >= LOCK_WAIT_SECONDS
    assert registry.live().version is None, "the refused promotion wrote nothing"
    registry.promote(three[0], "after release")  # released on exit: the next writer gets it at once
    assert registry.live().version == three[0]


def test_a_lock_left_by_a_dead_writer_is_taken_over_after_its_lease(
    registry: Registry, three: list[str], names: ResourceNames
) -> None:
    lock = names.live_pointer_parameter + "-lock"
    stale = json.dumps({"token": "dead-writer", "expires": time.time() - 1})
    boto3.client("ssm").put_parameter(Name=lock, Value=stale, Type="String")

    registry.promote(three[0], "after a crash")

    assert registry.live().version == three[0]
    assert not boto3.client("ssm").get_parameters(Names=[lock])["Parameters"]


def test_the_lock_is_released_when_the_write_fails(registry: Registry, names: ResourceNames) -> None:
    with pytest.raises(RegistryError, match="unknown model version"):
        registry.promote("not-registered", "typo")
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback("nothing live")
    assert not boto3.client("ssm").get_parameters(Names=[names.live_pointer_parameter + "-lock"])["Parameters"]
