"""The local stand-ins for the capture pipeline and the monitor schedule.

`CaptureShipper` plays CloudWatch Logs + Firehose: it tails the function log,
keeps the capture lines and writes them to the same hourly partitions in moto
S3. `MonitorLoop` plays EventBridge Scheduler: it runs the monitor cycle on the
stage's schedule, forwards its EMF metrics to moto CloudWatch and puts the
DriftDetected event on moto EventBridge.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from functions.adapters import factory
from functions.core.capture import CAPTURE_MARKER
from functions.core.events import event_source
from functions.monitor import metrics
from functions.monitor.service import CycleResult, LabelFiles, Window, run_cycle
from slipway.local.services import LocalContext
from stage.names import ResourceNames
from stage.settings import StageSettings

SHIP_SECONDS = 5.0  # the local "buffering interval"
# A rollout phase is judged this long after its bake, once its last requests have landed.
LOCAL_SETTLE_SECONDS = int(SHIP_SECONDS) + 1
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_seconds(expression: str) -> float:
    """Seconds between runs of a rate(...) expression; hourly for a cron(...) one."""
    match = _RATE.match(expression)
    if not match:
        return 3600.0
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class CaptureShipper:
    """Ships capture lines from the function log to capture/YYYY/MM/DD/HH/ in moto S3."""

    def __init__(self, log_path: Path, bucket: str) -> None:
        self._log_path = log_path
        self._bucket = bucket
        self._offset = log_path.stat().st_size if log_path.exists() else 0
        self._sequence = 0
        self._lock = threading.Lock()

    def ship(self) -> int:
        """Write the capture lines logged since the last call; the number of lines shipped."""
        with self._lock:
            if not self._log_path.exists():
                return 0
            with self._log_path.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
            complete = data.rfind(b"\n") + 1  # a half-written last line waits for the next call
            self._offset += complete
            by_hour: dict[datetime, list[bytes]] = {}
            marker = f'"{CAPTURE_MARKER}"'.encode()
            for line in data[:complete].splitlines():
                if marker not in line:
                    continue
                try:
                    time = datetime.fromisoformat(orjson.loads(line)["time"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
                by_hour.setdefault(time.replace(minute=0, second=0, microsecond=0), []).append(line)
            store = factory.monitoring_store(self._bucket)
            for hour, lines in by_hour.items():
                self._sequence += 1
                stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
                store.put_capture(hour, f"local-capture-{stamp}-{self._sequence:06d}", lines)
            return sum(len(lines) for lines in by_hour.values())


def monitor_once(
    settings: StageSettings, names: ResourceNames, *, now: datetime | None = None, hours: int | None = None
) -> CycleResult:
    """One monitor cycle over the last `hours` up to `now` (the current hour included), published locally
    as the Lambda publishes it: EMF metrics (forwarded to CloudWatch) and the DriftDetected event."""
    now = now or datetime.now(UTC)
    monitor = settings.monitor
    store = factory.monitoring_store(names.artifacts_bucket)
    labels = settings.data.labels
    result = run_cycle(
        store=store,
        registry=factory.registry(names.artifacts_bucket, names.live_pointer_parameter),
        policy=monitor,
        window=Window(now - timedelta(hours=hours or monitor.window_hours), now),
        label_files=LabelFiles(factory.lake_source(), labels) if labels else None,
    )
    emf = io.StringIO()
    with contextlib.redirect_stdout(emf):
        metrics.publish(result, namespace=names.metrics_namespace, service=names.monitor_service)
    forward_emf(emf.getvalue())
    if result.event is not None:
        factory.event_publisher(event_source(settings.project, settings.stage)).drift_detected(result.event)
    return result


def forward_emf(text: str) -> int:
    """PutMetricData for each EMF document in `text` (what CloudWatch does with them in AWS)."""
    cloudwatch = factory.client("cloudwatch")
    sent = 0
    for line in text.splitlines():
        try:
            document: dict[str, Any] = orjson.loads(line)
            directive = document["_aws"]["CloudWatchMetrics"][0]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            continue
        dimensions = [{"Name": name, "Value": str(document[name])} for name in directive["Dimensions"][0]]
        data = []
        for metric in directive["Metrics"]:
            values = document.get(metric["Name"])
            value = values[0] if isinstance(values, list) else values
            if value is None:
                continue
            data.append({"MetricName": metric["Name"], "Dimensions": dimensions, "Value": float(value),
                         "Unit": metric.get("Unit", "None")})  # fmt: skip
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data[start : start + 20])
        sent += len(data)
    return sent


class LocalMonitoring:
    """The local service: capture shipping every few seconds, the monitor on the stage's schedule."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.shipper: CaptureShipper | None = None

    def start(self, context: LocalContext) -> None:
        self._context = context
        self.shipper = CaptureShipper(context.log_dir / "inference.log", context.names.artifacts_bucket)
        interval = schedule_seconds(context.settings.monitor.schedule)
        self._threads = [
            threading.Thread(target=self._loop, args=(SHIP_SECONDS, self._ship), name="capture-shipper", daemon=True),
            threading.Thread(target=self._loop, args=(interval, self._monitor), name="drift-monitor", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        try:  # the last lines; stopping must go on when moto is already gone (they stay in the log file)
            self._ship()
        except Exception:
            print("local monitoring: the last capture lines could not be shipped", flush=True)
            traceback.print_exc(file=sys.stdout)

    def _loop(self, interval: float, work: Any) -> None:
        while not self._stop.wait(interval):
            try:
                work()
            except Exception:
                # Logged and retried at the next tick, as Scheduler would. stdout is the services log
                # under `slipway up`, where the functions' own logs go.
                print(f"local monitoring: {work.__name__.strip('_')} failed; retrying at the next tick", flush=True)
                traceback.print_exc(file=sys.stdout)

    def _ship(self) -> None:
        if self.shipper is not None:
            self.shipper.ship()

    def _monitor(self) -> None:
        self._ship()
        monitor_once(self._context.settings, self._context.names)
