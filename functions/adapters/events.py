"""Events on EventBridge."""

from __future__ import annotations

from typing import Any

from functions.core.events import DRIFT_DETECTED, DriftDetectedDetail


class EventBridgePublisher:
    """Puts the stage's events on a bus."""

    def __init__(self, events: Any, *, source: str, bus: str = "default") -> None:
        self._events = events
        self._source = source
        self._bus = bus

    def drift_detected(self, detail: DriftDetectedDetail) -> str:
        """Put a DriftDetected event; returns its id. Raises RuntimeError when EventBridge refuses it."""
        answer = self._events.put_events(
            Entries=[
                {
                    "Source": self._source,
                    "DetailType": DRIFT_DETECTED,
                    "Detail": detail.model_dump_json(),
                    "EventBusName": self._bus,
                }
            ]
        )
        entry = answer["Entries"][0]
        if answer.get("FailedEntryCount") or "EventId" not in entry:
            raise RuntimeError(f"EventBridge refused the DriftDetected event: {entry.get('ErrorMessage')}")
        return str(entry["EventId"])
