"""`slipway demo`: the whole loop on a fresh local stack, step by step, with the figures of each step.

Show which features the example model relies on, serve the example data, send
a row whose every value is in range but whose combination is not (flagged as an
outlier), monitor (no drift), shift the traffic (each row with its patient id) and
send its true labels, half to POST /feedback and half as a label file keyed by patient id, land
a new day of labelled rows in the stack's lake (the first model was trained from
its first three days), monitor (drift), let the DriftDetected event start the
retrain state machine, whose Prepare reads that day and only it,
show the gate's decision and the promotion, roll back; then roll the retrained
candidate out through shadow and canary to promotion, and watch a candidate
trained on shuffled labels refused by its rollout, live untouched. Last, on a
second stack whose `recipe` setting is the second example
(model.examples.penguins, species as a segment feature): per-species figures
from served traffic and feedback, then a gap between species when one species'
traffic shifts.

The demo always starts its own in-process stack on free ports, even when
AWS_ENDPOINT_URL names a running one: it needs the gateway and the capture
shipper in its own hands, an empty history (no earlier drift run inside the
cool-down, a known live model), and it must not promote and roll back models
on a stack someone is using.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from functions.adapters import factory
from functions.adapters.retrain_store import S3RetrainStore
from functions.core.data_source import DataSource
from functions.core.gate import GateDecision
from functions.core.registry import LivePointer
from functions.monitor.service import CycleResult
from functions.training.train import DEFAULT_RECIPE, train_bundle
from slipway.features_cli import report_lines
from slipway.local.lake import LAKE_DAYS, day_key, lake_object
from slipway.local.monitoring import LocalMonitoring, monitor_once
from slipway.local.recipes import variant
from slipway.local.retrain_service import RetrainService
from slipway.local.rollout import LocalRollout
from slipway.local.stack import STATE_DIR, LocalStack
from slipway.local.stepfunctions import ExecutionResult
from slipway.local.traffic import Client, example_rows, send_feedback, serve, shifted
from slipway.monitoring_cli import print_segments
from slipway.target import Target, resolve

DEMO_DIR = STATE_DIR / "demo"
SEED = 7
NORMAL_ROWS = 300
SHIFTED_ROWS = 600
# A recalibrated imaging device: every size measurement reads 25 % larger.
SHIFT = {f"{kind}_{size}": 1.25 for kind in ("mean", "se", "worst") for size in ("radius", "perimeter", "area")}
# A tumour of the 95th percentile's radius and the 5th percentile's area: each in range, together unseen.
OUTLIER_RADIUS, OUTLIER_AREA = 20.6, 280.0
EXECUTION_TIMEOUT_SECONDS = 120.0
# Each rollout phase bakes this long under the demo's traffic; the canary answers a third of it, so that it
# reaches the rollout's minimum rows with room to spare on a slow machine (10 % left it short under load).
ROLLOUT_BAKE_SECONDS = 8
DEMO_CANARY_PERCENT = 30
# The first example (model/recipe.py), and the second, whose recipe declares a categorical segment: species.
BREAST_CANCER = DEFAULT_RECIPE
PENGUINS = "model.examples.penguins"
SEGMENT_ROWS = 450
# Then Gentoo penguins are weighed on a scale that reads 20 % light.
SEGMENT_SHIFT, SHIFTED_SPECIES = {"body_mass_g": 0.8}, "Gentoo"
STEP_COUNT = 16
# The day that lands in the lake while the traffic drifts: rows of the same shifted world, labelled.
LANDED_ROWS = 200
OK, FAILED = "✓", "✗"


class DemoError(RuntimeError):
    """A step did not do what the loop needs from it; the message says what happened instead."""


class Progress:
    """Numbered steps, each with its details, a ✓ or ✗ and its seconds."""

    def __init__(self, total: int, out: TextIO = sys.stdout) -> None:
        self.total = total
        self.out = out
        self.number = 0
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        self.number += 1
        self._print(f"[{self.number}/{self.total}] {title} ...")
        started = time.perf_counter()
        try:
            yield lambda line: self._print(f"      {line}")
        except BaseException:
            self._print(f"  {FAILED}   {title} failed after {time.perf_counter() - started:.1f} s")
            raise
        elapsed = time.perf_counter() - started
        self.seconds[title] = round(elapsed, 2)
        self._print(f"  {OK}   {elapsed:.1f} s")

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


@dataclass
class Record:
    """What the demo saw, written to summary.json beside its logs (the test reads it)."""

    first_version: str = ""
    aws_endpoint: str = ""
    gateway: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    outliers: dict[str, Any] = field(default_factory=dict)
    served: dict[str, dict[str, int]] = field(default_factory=dict)
    feedback_accepted: int = 0
    label_file: str = ""
    cycles: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    landed: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    promoted: dict[str, Any] = field(default_factory=dict)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    final_pointer: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    outcome: str = "incomplete"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def run_demo(*, stage: str = "dev", state_dir: Path = DEMO_DIR, out: TextIO = sys.stdout) -> int:
    """Walk the loop; 0 when every step did what it should, 1 otherwise (the stack is stopped either way)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for earlier in (*state_dir.glob("*.log"), *state_dir.glob("drift-report-*.html"), state_dir / "summary.json"):
        earlier.unlink(missing_ok=True)  # each run's files describe that run alone
    progress = Progress(STEP_COUNT, out)
    record = Record()
    # A rollout phase bakes for seconds here: the serving container follows the pointer within one.
    # Each stack sets its recipe: the steps are written for the two examples' data, whatever the stage trains.
    stack = LocalStack(
        stage=stage, port=free_port(), aws_port=free_port(), log_dir=state_dir, pointer_refresh_seconds=1, lake=True,
        overrides={"recipe": BREAST_CANCER, "rollout": {"canary_percent": DEMO_CANARY_PERCENT}},
    )  # fmt: skip
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    print("Slipway demo: serve, drift, retrain, gate, promote, roll back, on a local stack of its own.", file=out)
    segmented = LocalStack(
        stage=stage,
        port=free_port(),
        aws_port=free_port(),
        log_dir=state_dir / "penguins",
        overrides={"recipe": PENGUINS},
    )
    try:
        with pipeline_log(state_dir / "retrain.log"):
            _walk(stack, stage, state_dir, progress, record)
        # One stack at a time: moto's state is the process's.
        print("Stopping the first example's stack ...", file=out, flush=True)
        stack.stop()
        _segments_walk(segmented, stage, progress, record)
        record.outcome = "completed"
    except KeyboardInterrupt:
        record.outcome = "interrupted"
        print(f"\n{FAILED} interrupted", file=out)
    except (DemoError, LookupError, OSError, RuntimeError) as exc:
        record.outcome = f"failed: {exc}"
        print(f"\n{FAILED} {exc}", file=out)
    finally:
        print("Stopping the local stack ...", file=out, flush=True)
        stack.stop()
        segmented.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        record.seconds = {**progress.seconds, "total": round(time.perf_counter() - started, 2)}
        (state_dir / "summary.json").write_text(json.dumps(record.__dict__, indent=2, default=str) + "\n")
    _print_summary(record, state_dir, out)
    return 0 if record.outcome == "completed" else 1


@contextlib.contextmanager
def pipeline_log(path: Path) -> Iterator[None]:
    """Face the retrain steps' logger (it runs in this process, in moto's thread) to a file, not the progress."""
    from functions.retrain import handler

    stream = handler.logger.registered_handler
    if not isinstance(stream, logging.StreamHandler):
        yield
        return
    with path.open("a", encoding="utf-8") as log:
        previous = stream.setStream(log)
        try:
            yield
        finally:
            stream.setStream(previous or sys.stdout)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _walk(stack: LocalStack, stage: str, state_dir: Path, progress: Progress, record: Record) -> None:
    with progress.step("Start the local stack") as say:
        stack.start()
        target = resolve(stage)
        manifest = target.registry().store.get_manifest(stack.live_version or "")
        record.first_version, record.aws_endpoint, record.gateway = manifest.version, stack.aws_endpoint, stack.url
        say(f"moto {stack.aws_endpoint}, gateway {stack.url}, logs {stack.function_log_path}")
        say(
            f"example model {manifest.version} trained and live: {manifest.metric} "
            f"{manifest.metrics[manifest.metric]:.4f} on holdout"
        )

    with progress.step("Which features earn their place (slipway features)") as say:
        if manifest.feature_report is None:
            raise DemoError("the example model has no feature report")
        lines = report_lines(manifest.feature_report)
        for line in [*lines[:7], "  ...", lines[-1]]:
            say(line)
        record.features = manifest.feature_report.model_dump(mode="json")

    normal = example_rows(NORMAL_ROWS, seed=SEED)
    with progress.step(f"Serve {NORMAL_ROWS} rows of the example data") as say:
        answered = serve(stack.url, normal.instances)
        record.served["normal"] = _versions(answered)
        say(f"{len(answered)} requests over HTTP, answered by {_describe(record.served['normal'])}")

    with progress.step("An outlier: every value inside its training range, the combination not") as say:
        record.outliers = _outlier(stack, normal.instances, say)

    with progress.step("Monitor cycle") as say:
        cycle = _monitor(stack, target, say)
        record.cycles.append(_cycle_figures(cycle, _save_report(target, cycle, state_dir / "drift-report-1.html", say)))
        if cycle.event is not None:
            raise DemoError(f"drift detected on unshifted traffic: {cycle.report.drifted_features}")
        say("no drift, as expected: nothing to retrain")

    drifting = shifted(example_rows(SHIFTED_ROWS, seed=SEED + 1), SHIFT)
    source = target.data_source()
    row_key = source.key
    if row_key is None:
        raise DemoError("the demo's lake declares no row key (data.key)")
    with progress.step(f"Shift the traffic: {len(SHIFT)} size features x1.25, {SHIFTED_ROWS} rows") as say:
        # Each row carries the patient's id (the stage's data.key): captured with the row, never scored.
        keys = [f"visit-{i}" for i in range(SHIFTED_ROWS)]
        answered = serve(stack.url, [{**row, row_key: key} for row, key in zip(drifting.instances, keys, strict=True)])
        record.served["shifted"] = _versions(answered)
        say(f"{len(answered)} requests answered by {_describe(record.served['shifted'])}, each with its {row_key}")
        half = SHIFTED_ROWS // 2
        record.feedback_accepted = send_feedback(stack.url, answered[:half], drifting.labels[:half])
        say(f"the first half's true labels sent to POST /feedback: {record.feedback_accepted} accepted")
        record.label_file = _land_labels(source, keys[half:], drifting.labels[half:])
        say(f"the other half's arrive later as a file keyed by {row_key}: {record.label_file}")

    landed = shifted(example_rows(LANDED_ROWS, seed=SEED + 2), SHIFT)
    with progress.step(f"A new day lands in the lake: {LANDED_ROWS} labelled rows of the shifted world") as say:
        [location] = source.locations()
        key = day_key(LAKE_DAYS)
        columns = {name: np.asarray([row[name] for row in landed.instances]) for name in landed.instances[0]}
        ids = [f"landed-{i}" for i in range(LANDED_ROWS)]
        factory.client("s3").put_object(
            Bucket=location.bucket, Key=key, Body=lake_object(columns, np.asarray(landed.labels), ids)
        )
        record.landed = f"s3://{location.bucket}/{key}"
        say(f"{record.landed}: the next run reads it, and only it")

    with progress.step("Monitor cycle") as say:
        cycle = _monitor(stack, target, say)
        record.cycles.append(_cycle_figures(cycle, _save_report(target, cycle, state_dir / "drift-report-2.html", say)))
        if cycle.event is None:
            raise DemoError("no drift detected on the shifted traffic")
        say(f"DriftDetected put on EventBridge: {', '.join(cycle.event.drifted_features)}")

    with progress.step("The DriftDetected event starts the retrain pipeline") as say:
        result, states = await_drift_run(stack, say)
        record.execution = {"arn": result.arn, "status": result.status, "states": states, "error": result.error}
        if not result.succeeded:
            raise DemoError(f"the pipeline {result.status}: {result.error} {(result.cause or '')[:300]}")
        data = result.output["data"]
        record.data = data
        if data["objects_read"] != 1:
            raise DemoError(f"the run read {data['objects_read']} objects of the lake, not the one new day")
        say(f"states: {' -> '.join(states)}")
        say(
            f"data: {data['table_rows']} rows of {data['objects']} source object(s) ({data['objects_read']} read "
            f"this run) + {data['labelled_rows']} labelled = {data['rows']}, snapshot {data['data_hash'][:12]}"
        )

    with progress.step("Gate decision and promotion") as say:
        decision = _decision(target, result.output["decision"]["decision_key"])
        record.decision = decision.model_dump(mode="json")
        weighed = decision.live
        live_score = "-" if weighed is None or weighed.score is None else f"{weighed.score:.4f}"
        say(
            f"{decision.verdict}: candidate {decision.candidate.version} {decision.metric} "
            f"{decision.candidate.score:.4f} vs live {weighed.version if weighed else None} {live_score} on the same "
            f"{decision.holdout_rows} holdout rows (tolerance {decision.tolerance:g})"
        )
        say(f"why: {'; '.join(decision.reasons)}")
        pointer = target.registry().live()
        record.promoted = pointer.model_dump(mode="json")
        say(f"live pointer: {_pointer(pointer)}")
        if decision.promote:
            say(
                f"serving answers with {pointer.version} within the pointer refresh ({stack.pointer_refresh_seconds} s)"
            )
        else:
            say("the live model is untouched: a refused candidate is kept out of the registry")

    with progress.step("Roll back with Registry.rollback") as say:
        registry = target.registry()
        if registry.live().previous is None:
            say("nothing to roll back: the live version has no predecessor")
        else:
            pointer = registry.rollback("slipway demo: roll back the drift retrain")
            say(f"live pointer: {_pointer(pointer)}")

    candidate = record.decision["candidate"]["version"] if record.decision else None
    retrain = stack.service(RetrainService).retrain
    if retrain is None:
        raise DemoError("the local stack has no retrain pipeline")
    rollout = retrain.rollout
    with progress.step("Roll the retrained candidate out: shadow, then canary, then promote") as say:
        if not candidate or candidate == target.registry().live().version:
            raise DemoError("no retrained candidate to roll out")
        outcome = _rollout(stack, rollout, candidate, "slipway demo: the retrained candidate", record, say)
        if outcome["action"] != "promote":
            raise DemoError(f"the retrained candidate was refused: {outcome['reason']}")

    with progress.step("A candidate trained on shuffled labels: refused by its rollout") as say:
        live = target.registry().live().version or ""
        bad = train_bundle(variant(seed_offset=1, shuffle_labels=True))
        target.registry().register(bad.manifest, bad.onnx_bytes)
        say(f"{bad.version} trained on shuffled labels: holdout {bad.manifest.metric} "
            f"{bad.manifest.metrics[bad.manifest.metric]:.4f}, registered")  # fmt: skip
        outcome = _rollout(stack, rollout, bad.version, "slipway demo: a bad candidate", record, say)
        if outcome["action"] == "promote" or target.registry().live().version != live:
            raise DemoError("the bad candidate was promoted")
        say(f"live untouched: {live}")
        record.final_pointer = target.registry().live().model_dump(mode="json")


def _segments_walk(stack: LocalStack, stage: str, progress: Progress, record: Record) -> None:
    """The second example: the monitor's figures per species, before and after one species' traffic shifts."""
    with progress.step("A second example with a segment feature: a penguin's sex, monitored per species") as say:
        stack.start()
        target = resolve(stage)
        manifest = target.registry().store.get_manifest(stack.live_version or "")
        segments = ", ".join(f"{s.feature} ({', '.join(s.values)})" for s in manifest.segments)
        say(f"{manifest.lineage.recipe} trained and live: {manifest.version}, {manifest.metric} "
            f"{manifest.metrics[manifest.metric]:.4f} on holdout; segments: {segments}")  # fmt: skip

    usual = example_rows(SEGMENT_ROWS, seed=SEED, recipe_name=manifest.lineage.recipe)
    with progress.step(f"Serve {SEGMENT_ROWS} penguins with their true sex; monitor per species") as say:
        gap = _segment_cycle(stack, target, usual, say, record)

    odd = shifted(
        example_rows(2 * SEGMENT_ROWS, seed=SEED + 1, recipe_name=manifest.lineage.recipe),
        SEGMENT_SHIFT,
        where=lambda row: row.get("species") == SHIFTED_SPECIES,
    )
    with progress.step(f"{SHIFTED_SPECIES} weighed 20 % light: {2 * SEGMENT_ROWS} more penguins; monitor") as say:
        wider = _segment_cycle(stack, target, odd, say, record)
        if gap is None or wider is None or wider <= gap:
            raise DemoError(f"the segment gap did not widen when {SHIFTED_SPECIES}'s traffic shifted: {gap} -> {wider}")
        say(f"the widest gap went from {gap:.3f} to {wider:.3f}: one species' answers moved, the others' did not")


def _segment_cycle(
    stack: LocalStack, target: Target, rows: Any, say: Callable[[str], None], record: Record
) -> float | None:
    """Serve the rows, send their labels, run a monitor cycle; say its segment figures; the widest gap."""
    answered = serve(stack.url, rows.instances)
    accepted = send_feedback(stack.url, answered, rows.labels)
    say(f"{len(answered)} requests answered, {accepted} true labels sent to POST /feedback")
    cycle = _monitor(stack, target, say)
    if cycle.segments is None:
        raise DemoError("the monitor reported no segments for a recipe that declares them")
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        print_segments(cycle.segments)
    for line in table.getvalue().strip().splitlines():
        say(line)
    record.segments.append(cycle.segments.model_dump(mode="json"))
    return cycle.segments.largest_gap


def _rollout(
    stack: LocalStack, rollout: LocalRollout, candidate: str, reason: str, record: Record, say: Callable[[str], None]
) -> dict[str, Any]:
    """Roll `candidate` out under one-row traffic; say each phase's figures and verdict; the outcome."""
    stop = threading.Event()
    served: list[Any] = []

    def traffic() -> None:
        rows = example_rows(200, seed=SEED + 2).instances
        while not stop.is_set():
            served.extend(serve(stack.url, rows[:50]))

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        result = rollout.wait(rollout.start(candidate, reason, bake_seconds=ROLLOUT_BAKE_SECONDS),
                              timeout_seconds=EXECUTION_TIMEOUT_SECONDS)  # fmt: skip
    finally:
        stop.set()
        sender.join(timeout=30)
    if not result.succeeded:
        raise DemoError(f"the rollout {result.status}: {result.error} {(result.cause or '')[:300]}")
    versions = _versions(served)
    say(f"states: {' -> '.join(rollout.steps_run(result))}")
    say(f"{len(served)} requests meanwhile, answered by {_describe(versions)}")
    for mode in ("shadow", "canary"):
        verdict = result.output.get(f"verdict_{mode}")
        if not verdict:
            continue
        figures = verdict["figures"] or {}
        shadow, answered = figures.get("shadow") or {}, figures.get("candidate") or {}
        shown = (
            f"{shadow.get('rows', 0)} rows scored by both, label agreement {_share(shadow.get('label_agreement'))}, "
            f"p99 difference {_number(shadow.get('p99_abs_difference'))}"
            if mode == "shadow"
            else f"the candidate answered {answered.get('requests', 0)} requests, plan B "
            f"{_share(answered.get('fallback_rows', 0) / max(answered.get('rows', 0), 1))}"
        )
        why = "; ".join(verdict["reasons"]) or "every check passed"
        say(f"{mode}: {shown}: {verdict['decision']} ({why})")
    outcome = dict(result.output["outcome"])
    say(outcome["reason"])
    reasons = {
        m: result.output[f"verdict_{m}"]["reasons"] for m in ("shadow", "canary") if f"verdict_{m}" in result.output
    }
    record.rollouts.append(
        {"candidate": candidate, "served": versions, "outcome": outcome["action"], "reasons": reasons}
    )
    return outcome


def _outlier(stack: LocalStack, typical: list[dict[str, Any]], say: Callable[[str], None]) -> dict[str, Any]:
    """One request of the served rows and a tumour with a large radius and a small area: what the detector says."""
    odd = {**typical[0], "mean_radius": OUTLIER_RADIUS, "mean_area": OUTLIER_AREA}
    with contextlib.closing(Client(stack.url)) as client:
        body, _ = client.post("/predict", {"instances": [*typical, odd]})
    *usual, answer = body["predictions"]
    flagged = sum(p["outlier"]["flag"] for p in usual)
    say(f"mean_radius {OUTLIER_RADIUS} and mean_area {OUTLIER_AREA}: out_of_range {answer['out_of_range']}, "
        f"outlier score {answer['outlier']['score']:.2f}, flagged {answer['outlier']['flag']}")  # fmt: skip
    say(f"of the {len(usual)} rows of the example data: {flagged} flagged ({flagged / len(usual):.1%})")
    if not answer["outlier"]["flag"] or answer["out_of_range"] or flagged / len(usual) >= 0.05:
        raise DemoError(f"the outlier detector did not tell the odd row from the usual ones: {answer}")
    return {"odd": answer["outlier"], "usual_flagged": flagged, "usual_rows": len(usual)}


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _land_labels(source: DataSource, keys: list[str], labels: list[Any]) -> str:
    """A label file (key, label) under the stage's data.labels, as a business system would export it; its URI."""
    location = source.labels_location()
    if location is None:
        raise DemoError("the demo's lake declares no labels prefix")
    key = f"{location.prefix}dt={datetime.now(UTC):%Y-%m-%d}/outcomes.csv"
    body = "key,label\n" + "".join(f"{k},{label}\n" for k, label in zip(keys, labels, strict=True))
    factory.client("s3").put_object(Bucket=location.bucket, Key=key, Body=body.encode())
    return f"s3://{location.bucket}/{key}"


def _monitor(stack: LocalStack, target: Target, say: Callable[[str], None]) -> CycleResult:
    shipper = stack.service(LocalMonitoring).shipper
    shipped = shipper.ship() if shipper is not None else 0  # the lines its 5-second loop has not shipped yet
    say(f"capture shipped to s3://{target.names.artifacts_bucket}/capture/ ({shipped} lines in this last batch)")
    cycle = monitor_once(target.deployed_settings(), target.names)
    report = cycle.report
    say(
        f"{report.rows} rows of the last {target.settings.monitor.window_hours} h vs {report.model_version}: "
        f"{report.verdict.replace('_', ' ')}, {len(report.drifted_features)}/{len(report.features)} features "
        f"drifted (share {report.drift_share:.2f}, threshold {target.settings.monitor.drift.drift_share:g})"
    )
    if report.drifted_features:
        say(f"drifted: {', '.join(report.drifted_features)}")
    if report.outliers is not None:
        say(f"outliers: {report.outliers.summary()}")
    files, labels = cycle.label_files, cycle.labels
    if files is not None and files.objects_read:
        say(f"label files taken into feedback: {files.objects_read} read, {files.labels} labels")
    if labels.labels:
        say(
            f"labels of the quality window: {labels.matched} matched to their prediction (by request id or "
            f"{target.data_source().key}), {labels.unknown} not (yet), {labels.duplicates} repeated"
        )
    return cycle


def _save_report(target: Target, cycle: CycleResult, local_copy: Path, say: Callable[[str], None]) -> str:
    """The report's S3 location; a copy is kept beside the demo's logs, since the stack's S3 goes away."""
    store = S3RetrainStore(factory.client("s3"), target.names.artifacts_bucket)
    local_copy.write_bytes(store.get(cycle.html_key))
    location = f"s3://{target.names.artifacts_bucket}/{cycle.html_key}"
    say(f"report {location} (copy: {local_copy})")
    return location


def _cycle_figures(cycle: CycleResult, report_location: str) -> dict[str, Any]:
    report = cycle.report
    return {
        "rows": report.rows,
        "verdict": report.verdict,
        "drift_detected": report.drift_detected,
        "drift_share": report.drift_share,
        "drifted_features": report.drifted_features,
        "event": cycle.event is not None,
        "labels": cycle.labels.model_dump(),
        "label_files": cycle.label_files.model_dump() if cycle.label_files else None,
        "report": report_location,
    }


def await_drift_run(
    stack: LocalStack, say: Callable[[str], None] = lambda _line: None
) -> tuple[ExecutionResult, list[str]]:
    """The execution the drift rule started (through the local retrain service), once it has ended."""
    retrain = stack.service(RetrainService).retrain
    if retrain is None:
        raise DemoError("the retrain service has no state machine")
    states = factory.client("stepfunctions")
    deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
    while not (executions := states.list_executions(stateMachineArn=retrain.state_machine_arn)["executions"]):
        if time.monotonic() > deadline:
            raise DemoError("the DriftDetected event started no execution")
        time.sleep(0.1)
    arn = executions[0]["executionArn"]
    described = states.describe_execution(executionArn=arn)
    say(f"execution {arn.rsplit(':', 1)[-1]} started: {json.loads(described['input']).get('reason', '')}")
    result = retrain.runner.wait(arn, timeout_seconds=EXECUTION_TIMEOUT_SECONDS)
    say(f"ended {result.status}")
    return result, retrain.steps_run(result)


def _decision(target: Target, key: str) -> GateDecision:
    store = S3RetrainStore(factory.client("s3"), target.names.artifacts_bucket)
    return GateDecision.model_validate_json(store.get(key))


def _versions(answered: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for served in answered:
        counts[served.model_version or "none"] = counts.get(served.model_version or "none", 0) + 1
    return counts


def _describe(versions: dict[str, int]) -> str:
    return ", ".join(f"{version} ({count})" for version, count in versions.items())


def _pointer(pointer: LivePointer) -> str:
    return f"{pointer.version} (previous {pointer.previous or 'none'}; {pointer.action}: {pointer.reason or '-'})"


def _print_summary(record: Record, state_dir: Path, out: TextIO) -> None:
    lines = [f"\nSummary: {record.outcome} in {record.seconds.get('total', 0):.1f} s"]
    for number, cycle in enumerate(record.cycles, start=1):
        drifted = ", ".join(cycle["drifted_features"]) or "none"
        lines.append(
            f"  monitor cycle {number}: {cycle['rows']} rows, drift share {cycle['drift_share']:.2f} "
            f"({'drift' if cycle['drift_detected'] else 'no drift'}; drifted: {drifted})"
        )
    if record.execution:
        lines.append(f"  retrain execution: {record.execution['status']}")
    if record.decision:
        d = record.decision
        lines.append(f"  gate: {d['verdict']} {d['candidate']['version']} ({'; '.join(d['reasons'])})")
    for rollout in record.rollouts:
        lines.append(f"  rollout of {rollout['candidate']}: {rollout['outcome']}")
    if record.final_pointer:
        lines.append(f"  live now: {record.final_pointer['version']} (first live: {record.first_version})")
    lines.append(f"  logs, drift reports and summary.json in {state_dir}")
    print("\n".join(lines), file=out, flush=True)
