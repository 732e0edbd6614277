"""The drift trigger's cool-down, the schedule's start, and the automatic rollback watcher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from functions.core.events import DriftDetectedDetail, EstimatedQualityDrop
from functions.core.registry import Registry
from functions.retrain.control import on_alarm, on_drift
from functions.training.train import Bundle, load_recipe, load_table, train_bundle

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class FakeTriggerStore:
    def __init__(self) -> None:
        self.last: datetime | None = None

    def last_trigger(self) -> datetime | None:
        return self.last

    def set_last_trigger(self, at: datetime) -> None:
        self.last = at


class FakeStarter:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def start(self, reason: str, *, at: datetime | None = None) -> str:
        self.reasons.append(reason)
        return f"arn:execution:{len(self.reasons)}"


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def notify(self, subject: str, message: dict[str, object]) -> None:
        self.sent.append((subject, message))


def _drift() -> DriftDetectedDetail:
    return DriftDetectedDetail(
        model_version="abc", window_start=NOW - timedelta(hours=1), window_end=NOW, rows=500,
        drift_share=0.4, drifted_features=["mean_radius", "mean_area"], report_key="reports/x.json",
    )  # fmt: skip


def test_a_storm_of_drift_events_starts_one_run_until_the_cooldown_passes() -> None:
    store, starter = FakeTriggerStore(), FakeStarter()
    cooldown = timedelta(hours=6)
    outcomes = [
        on_drift(_drift(), store, starter, cooldown=cooldown, now=NOW + timedelta(minutes=i)) for i in range(20)
    ]
    assert [o.started for o in outcomes] == [True] + [False] * 19
    assert len(starter.reasons) == 1 and "drift on 2 features" in starter.reasons[0]
    assert "cool-down" in outcomes[1].reason
    later = on_drift(_drift(), store, starter, cooldown=cooldown, now=NOW + cooldown)
    assert later.started and len(starter.reasons) == 2


def test_a_drop_of_estimated_quality_is_a_retrain_reason_of_its_own() -> None:
    store, starter = FakeTriggerStore(), FakeStarter()
    drop = EstimatedQualityDrop(metric="roc_auc", value=0.71, threshold=0.8)
    alone = _drift().model_copy(update={"drifted_features": ["estimated_quality"], "estimated_quality": drop})
    outcome = on_drift(alone, store, starter, cooldown=timedelta(hours=6), now=NOW)
    assert outcome.started and outcome.reason == "estimated roc_auc 0.7100 below 0.8 of abc"
    both = _drift().model_copy(update={"estimated_quality": drop})
    later = on_drift(both, store, starter, cooldown=timedelta(hours=6), now=NOW + timedelta(hours=6))
    assert later.reason == "drift on 2 features (share 0.40) and estimated roc_auc 0.7100 below 0.8 of abc"


def _variant(bundle: Bundle) -> Bundle:
    recipe = load_recipe()
    columns, target = load_table(recipe)
    columns = {name: np.asarray(values)[1:] for name, values in columns.items()}
    return train_bundle(recipe, columns, np.asarray(target)[1:])


def test_an_alarm_soon_after_a_promotion_rolls_back_and_notifies(registry: Registry, live_bundle: Bundle) -> None:
    newer = _variant(live_bundle)
    registry.register(newer.manifest, newer.onnx_bytes)
    registry.promote(newer.version, "retrain", now=NOW)
    notifier = FakeNotifier()
    outcome = on_alarm(
        "slipway-dev-fallback-rate", registry, notifier, window=timedelta(hours=1), now=NOW + timedelta(minutes=10)
    )
    assert outcome.rolled_back and outcome.live == live_bundle.version
    assert registry.live().version == live_bundle.version and registry.live().action == "rollback"
    [(subject, message)] = notifier.sent
    assert "rolled back" in subject and message["from"] == newer.version


def test_an_alarm_outside_the_window_changes_nothing(registry: Registry, live_bundle: Bundle) -> None:
    newer = _variant(live_bundle)
    registry.register(newer.manifest, newer.onnx_bytes)
    registry.promote(newer.version, "retrain", now=NOW)
    notifier = FakeNotifier()
    outcome = on_alarm("5xx", registry, notifier, window=timedelta(hours=1), now=NOW + timedelta(hours=2))
    assert not outcome.rolled_back and registry.live().version == newer.version and notifier.sent == []


def test_same_data_same_version_and_one_changed_row_a_new_one(bundle: Bundle) -> None:
    recipe = load_recipe()
    columns, target = load_table(recipe)
    again = train_bundle(recipe, columns, target)
    assert again.version == bundle.version and again.onnx_bytes == bundle.onnx_bytes
    changed = {name: np.array(values, copy=True) for name, values in columns.items()}
    changed["mean_radius"][0] += 1.0
    assert train_bundle(recipe, changed, target).version != bundle.version
