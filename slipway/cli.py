"""`slipway`: train, register, promote and roll back models; run the local stack; smoke-test a stage.

Every command acts on real AWS with the usual credentials, or on the local
stack when AWS_ENDPOINT_URL points at it (`slipway up` prints the line).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import BundleError, RegistryError
from functions.core.registry import LivePointer, summarise
from stage.settings import SettingsError

EXIT_USAGE = 2
EXIT_FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command(args) or 0)
    except (SettingsError, RegistryError, BundleError, ValueError) as exc:
        print(f"slipway: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (BotoCoreError, ClientError) as exc:
        where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        print(f"slipway: {where} refused or could not be reached: {exc}", file=sys.stderr)
        print("  (for the local stack: run `make run` and export the AWS_ENDPOINT_URL it prints)", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--stage", default="dev", help="stage from cdk.json (default: dev)")
        sub.set_defaults(command=handler)
        return sub

    up = command("up", cmd_up, "Run the whole system locally against moto and serve the example model.")
    up.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    up.add_argument("--port", type=int, default=8080, help="gateway port (default: 8080)")
    up.add_argument("--aws-port", type=int, default=None, help="moto port (default: 5050)")
    up.add_argument(
        "--lake",
        action="store_true",
        help="train from a small lake in moto (the recipe's data as daily Parquet partitions) instead of load_data()",
    )

    check = command(
        "check", cmd_check, "Check the stage's recipe (or --recipe) against the recipe contract, without training."
    )
    check.add_argument("--recipe", metavar="MODULE", help="a recipe module by import path (default: the stage's)")
    check.add_argument(
        "--data",
        action="store_true",
        help="also run load_data() and check FEATURES, CAPTURE_EXCLUDE and SEGMENTS against its columns (no fitting)",
    )

    train = command(
        "train", cmd_train, "Train the stage's recipe, export it to ONNX, check parity, register the bundle."
    )
    train.add_argument("--promote", action="store_true", help="make the new version live")
    train.add_argument("--reason", default="trained by hand", help="recorded with the promotion")
    train.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the bundle (model.onnx, manifest.json) to DIR and print its spec; no AWS, no stack",
    )

    models = command("models", cmd_models, "List registered versions and which one is live.")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    promote = command("promote", cmd_promote, "Make VERSION the live model.")
    promote.add_argument("version")
    promote.add_argument("--reason", required=True, help="why (recorded in the registry)")

    shadow = command(
        "shadow", cmd_shadow, "Load VERSION beside the live model; it scores a share of requests, live answers all."
    )
    shadow.add_argument("version")
    shadow.add_argument("--percent", type=float, default=100.0, help="share of requests it also scores (100)")
    shadow.add_argument("--reason", default="shadow by hand", help="recorded in the registry")

    canary = command("canary", cmd_canary, "Let VERSION answer a share of requests beside the live model.")
    canary.add_argument("version")
    canary.add_argument("--percent", type=float, required=True, help="share of requests it answers (0-100]")
    canary.add_argument("--reason", default="canary by hand", help="recorded in the registry")

    rollout = command(
        "rollout", cmd_rollout, "Roll VERSION out (shadow, then canary) and let its figures promote or refuse it."
    )
    rollout.add_argument("version")
    rollout.add_argument("--reason", default="rollout by hand", help="recorded with the decision")
    rollout.add_argument("--bake-seconds", type=int, default=None, help="each phase's bake (rollout.bake_minutes)")
    rollout.add_argument(
        "--settle-seconds", type=int, default=None, help="wait for capture after each bake (Firehose's buffer + 60 s)"
    )
    rollout.add_argument("--no-wait", action="store_true", help="start and return without waiting for the decision")

    release = command(
        "release",
        cmd_release,
        "Copy VERSION, which passed the --from stage's gate, into --stage and make it live by that stage's "
        "retrain.rollout (canary, shadow, immediate or manual).",
    )
    release.add_argument("version")
    release.add_argument("--from", dest="source", required=True, metavar="STAGE", help="the stage it passed (dev)")
    release.add_argument("--reason", default="released by hand", help="recorded with the release and promotion")
    release.add_argument(
        "--allow-spec-change",
        action="store_true",
        help="release a version whose feature spec differs from the stage's live model (callers changed first)",
    )
    release.add_argument("--json", action="store_true", help="print what was done as JSON (for pipelines)")

    command("stop-rollout", cmd_stop_rollout, "Take the shadow or canary candidate out; the live model stays.")

    retrain = command("retrain", cmd_retrain, "Start the retrain pipeline (prepare, train, gate, promote) now.")
    retrain.add_argument("--reason", default="started by hand", help="recorded with the run and any promotion")
    retrain.add_argument("--no-wait", action="store_true", help="start and return without waiting for the end")

    rollback = command("rollback", cmd_rollback, "Restore the version that was live before the current one.")
    rollback.add_argument("--reason", default="rolled back by hand", help="why (recorded in the registry)")

    demo = command("demo", cmd_demo, "Walk the whole loop on a local stack: serve, drift, retrain, gate, roll back.")
    demo.add_argument("--dir", default=None, help="where the logs, drift reports and summary go (.slipway/demo)")

    from slipway.monitoring_cli import add_commands as add_monitoring_commands

    add_monitoring_commands(command)
    from slipway.features_cli import add_commands as add_features_commands

    add_features_commands(command)

    smoke = command(
        "smoke",
        cmd_smoke,
        "Call a deployed stage (or --url) end to end and check the answers: with the stage's API key, SigV4 for its "
        "front door (api.auth iam), or the token in SLIPWAY_JWT (api.auth jwt).",
    )
    smoke.add_argument("--url", help="endpoint base URL (default: the stage's stack output)")
    # Keys and tokens never go on a command line (shell history, process lists): SLIPWAY_API_KEY, SLIPWAY_JWT.
    purge = command("purge-labels", cmd_purge_labels, "Delete every label one caller sent (a poisoning caller).")
    purge.add_argument("--caller", required=True, help="as recorded: key:<API key id>, iam:<ARN>, data.labels")
    erase = command("erase-key", cmd_erase_key, "Erase every captured row and label of one row key (data.key).")
    erase.add_argument("key", help="the row key, as callers sent it")
    redrive = command("redrive", cmd_redrive, "Move async dead letters back to the requests queue (after a fix).")
    redrive.add_argument("--limit", type=int, default=None, help="move at most this many (default: all)")

    score = command("score", cmd_score, "Score the new or changed CSV objects under an S3 prefix (batch).")
    score.add_argument("--input", required=True, help="key prefix of the input objects (under batch/)")
    score.add_argument("--output", required=True, help="key prefix for the scored objects (under batch/)")
    return parser


def cmd_purge_labels(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from slipway.target import resolve

    names = resolve(args.stage).names
    objects, labels = factory.monitoring_store(names.artifacts_bucket).purge_feedback(args.caller)
    print(f"deleted {labels} label(s) from {args.caller} ({objects} object(s) under feedback/)")
    return 0


def cmd_erase_key(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from slipway.target import resolve

    names = resolve(args.stage).names
    erased = factory.monitoring_store(names.artifacts_bucket).erase_key(args.key)
    print(
        f"erased {erased.captured_rows} captured row(s) from {erased.capture_objects} object(s) and "
        f"{erased.labels} label(s) from {erased.feedback_objects} object(s), with their older versions"
    )
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from functions.adapters.job_queue import redrive
    from slipway.target import resolve

    names = resolve(args.stage).names
    report = redrive(
        factory.client("sqs"),
        dead_letter_url=names.queue_url(names.dead_letter_queue),
        target_url=names.queue_url(names.requests_queue),
        limit=args.limit,
    )
    print(f"moved {report.moved} dead letter(s) to {names.requests_queue}; {report.remaining} left")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from slipway.batch import run_batch
    from slipway.target import resolve

    return run_batch(resolve(args.stage), input_prefix=args.input, output_prefix=args.output)


def cmd_up(args: argparse.Namespace) -> int:
    from slipway.local.stack import DEFAULT_AWS_PORT, LocalStack

    stack = LocalStack(
        stage=args.stage, host=args.host, port=args.port, aws_port=args.aws_port or DEFAULT_AWS_PORT, lake=args.lake
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    terminal = sys.stdout

    def say(text: str) -> None:
        print(text, file=terminal, flush=True)

    say(f"Starting the Slipway local stack (stage {args.stage}): moto, example model, gateway ...")
    # The background functions (worker, monitor, pipeline steps) log and publish metrics on
    # stdout as they would in Lambda: that goes to a log file; the terminal keeps the requests.
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    with (stack.log_dir / "services.log").open("a", encoding="utf-8") as services_log:
        sys.stdout = services_log
        try:
            return _serve(stack, stop, say)
        finally:
            sys.stdout = terminal


def _serve(stack: Any, stop: threading.Event, say: Any) -> int:
    try:
        stack.start(access_log=lambda line: say(f"  {line}"))
    except OSError as exc:
        stack.stop()
        print(f"slipway: cannot listen: {exc}. Choose other ports with --port / --aws-port.", file=sys.stderr)
        return EXIT_FAILED
    try:
        say(_banner(stack))
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
        say("\nStopping ...")
        stack.stop()
    say("Stopped.")
    return 0


def _banner(stack: Any) -> str:
    from slipway.target import resolve

    manifest = resolve(stack.stage).registry().store.get_manifest(stack.live_version)
    example = {f.name: f.impute for f in manifest.feature_spec.features if f.required}
    body = json.dumps({"instances": [example]})
    score = manifest.metrics[manifest.metric]
    return f"""
Slipway is serving model {manifest.version} of {manifest.lineage.recipe} ({manifest.task}, {manifest.metric} \
{score:.3f} on holdout).

  API    {stack.url}   POST /predict  GET /model  GET /health  GET /openapi.json
  AWS    export AWS_ENDPOINT_URL={stack.aws_endpoint}   (moto: other slipway commands use it)
  logs   {stack.log_dir}/ (inference.log: the API function; services.log: worker, monitor, pipeline)

Try it:
  curl -s {stack.url}/predict -H 'Content-Type: application/json' -d '{body}'

Press Ctrl-C to stop."""


def cmd_check(args: argparse.Namespace) -> int:
    from functions.training.recipe_contract import CONTRACT
    from functions.training.train import data_declarations, load_recipe, load_table
    from stage.settings import load_settings

    name = args.recipe or load_settings(args.stage).recipe
    recipe = load_recipe(name)  # refuses a recipe that breaks the contract, listing every problem
    print(f"recipe {name} meets the recipe contract ({recipe.TASK}, METRIC {recipe.METRIC}, SEED {recipe.SEED})")
    for entry in CONTRACT:
        if entry.required:
            continue
        if hasattr(recipe, entry.name):
            shown = repr(getattr(recipe, entry.name))
            print(f"  {entry.name}: {shown if len(shown) <= 100 else shown[:97] + '...'}")
        else:
            print(f"  {entry.name}: {entry.default_text} (default)")
    if args.data:
        columns, target = load_table(recipe)
        spec, excluded, segments = data_declarations(recipe, columns)
        required = sum(feature.required for feature in spec.features)
        print(
            f"data: {len(target)} rows, {len(spec.features)} features ({required} required); FEATURES, "
            f"CAPTURE_EXCLUDE ({len(excluded)}) and SEGMENTS ({len(segments)}) fit its columns"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from functions.training.train import load_recipe, train_bundle
    from slipway.features_cli import print_report
    from slipway.target import resolve
    from stage.settings import load_settings

    if args.out is not None:
        if args.promote:
            raise ValueError("--out writes the bundle to a folder; --promote needs a stack: use one or the other")
        recipe = load_recipe(load_settings(args.stage).recipe)
        return _train_offline(train_bundle(recipe, code_revision=_code_revision()), args.out)
    from functions.adapters import factory
    from functions.adapters.athena_queries import AthenaQueries
    from functions.adapters.lake_objects import S3Source
    from functions.adapters.retrain_store import S3RetrainStore
    from functions.retrain.steps import train_current

    target = resolve(args.stage)
    bucket = target.names.artifacts_bucket
    source = target.data_source()
    bundle = train_current(
        S3RetrainStore(factory.client("s3"), bucket),
        S3Source(factory.client("s3")),
        source,
        load_recipe(target.settings.recipe),
        artifacts_bucket=bucket,
        code_revision=_code_revision(),
        queries=AthenaQueries(factory.client("athena")) if source.kind == "athena" else None,
    )
    manifest = bundle.manifest
    registry = target.registry()
    created = registry.register(manifest, bundle.onnx_bytes)
    data = manifest.lineage.data
    if data is not None:
        print(f"data: {manifest.lineage.rows} rows of {len(data.objects)} object(s), newest {data.watermark}")
    print(
        f"trained {manifest.version}: {manifest.metric} {manifest.metrics[manifest.metric]:.4f} on holdout, "
        f"ONNX parity {manifest.parity.max_abs_diff:.2g} (tolerance {manifest.parity.tolerance:g})"
    )
    print(f"{'registered' if created else 'already registered'} in s3://{target.names.artifacts_bucket}")
    print_report(manifest.feature_report, manifest.version)
    if args.promote:
        _print_pointer(registry.promote(manifest.version, args.reason))
    return 0


def _train_offline(bundle: Any, out: Path) -> int:
    """Write the bundle where the registry would store it, and say what it takes and how well it does."""
    from functions.core import layout
    from functions.training.export import graph_precision
    from slipway.features_cli import print_report

    manifest = bundle.manifest
    out.mkdir(parents=True, exist_ok=True)
    (out / layout.MODEL_FILE).write_bytes(bundle.onnx_bytes)
    (out / layout.MANIFEST_FILE).write_bytes(manifest.to_json())
    print(f"trained {manifest.version} ({manifest.task}, {manifest.lineage.rows} rows, seed {manifest.lineage.seed})")
    print("features:")
    for feature in manifest.feature_spec.features:
        detail = (
            f"categories {', '.join(feature.categories)}"
            if feature.categories
            else f"training range {feature.train_min:g} to {feature.train_max:g}, precision {feature.decimals}"
            if feature.train_min is not None and feature.train_max is not None
            else ""
        )
        required = "required" if feature.required else f"imputed with {feature.impute!r} when missing"
        print(f"  {feature.name}: {feature.type.value}, {required}{'; ' + detail if detail else ''}")
    print("holdout metrics: " + ", ".join(f"{name} {value:.4f}" for name, value in sorted(manifest.metrics.items())))
    parity = manifest.parity
    print(
        f"ONNX parity: max difference {parity.max_abs_diff:.2g} on {parity.rows} holdout rows (tolerance "
        f"{parity.tolerance:g}), {graph_precision(bundle.onnx_bytes)} graph"
    )
    print_report(manifest.feature_report, manifest.version)
    print(f"wrote {out / layout.MODEL_FILE} and {out / layout.MANIFEST_FILE}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    registry = resolve(args.stage).registry()
    rows = summarise(registry)
    pointer = registry.live()
    if args.json:
        print(
            json.dumps(
                {"live": pointer.model_dump(mode="json"), "models": [r.model_dump(mode="json") for r in rows]}, indent=2
            )
        )
        return 0
    if not rows:
        print("no registered models: run `slipway train`")
        return 0
    print(f"{'':2}{'version':18}{'metric':10}{'score':>8}{'rows':>8}  {'data':14}data up to")
    for row in rows:
        up_to = f"{row.data_up_to:%Y-%m-%d %H:%M:%S}" if row.data_up_to else "-"
        print(
            f"{'*' if row.live else '':2}{row.version:18}{row.metric:10}{row.score:8.4f}{row.rows:8d}  "
            f"{row.data_hash:14}{up_to}"
        )
    _print_pointer(pointer)
    _print_decisions(resolve(args.stage).names.artifacts_bucket)
    return 0


def _print_decisions(bucket: str, limit: int = 5) -> None:
    from functions.adapters import factory
    from functions.adapters.retrain_store import S3RetrainStore

    decisions = S3RetrainStore(factory.client("s3"), bucket).decisions(limit)
    if decisions:
        print("gate decisions (newest first):")
    for d in decisions:
        live = "-" if d.live is None or d.live.score is None else f"{d.live.score:.4f}"
        candidate = d.candidate
        print(
            f"  {d.decided_at:%Y-%m-%d %H:%M} {d.verdict:9} {candidate.version} {d.metric} {candidate.score:.4f} "
            f"vs live {live} (tolerance {d.tolerance:g}, {d.data_rows} rows): {'; '.join(d.reasons)}"
        )


def cmd_retrain(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from functions.adapters.retrain_control import StepFunctionsStarter
    from slipway.executions import StateMachineError, state_machine_arn, wait_for_execution
    from slipway.target import resolve

    target = resolve(args.stage)
    sfn = factory.client("stepfunctions")
    arn = state_machine_arn(target.names, target.names.retrain_state_machine)
    execution = StepFunctionsStarter(sfn, arn).start(args.reason)
    print(f"started {execution}")
    if args.no_wait:
        return 0
    # The state machine's own timeout bounds a run; wait a little past it for its end state.
    timeout = target.settings.retrain.train_timeout_seconds + 7 * target.settings.retrain.step_timeout_seconds
    try:
        result = wait_for_execution(sfn, execution, timeout_seconds=timeout, poll_seconds=0.5 if target.local else 5)
    except StateMachineError as exc:
        print(f"slipway: {exc}")
        return EXIT_FAILED
    if not result.succeeded:
        print(f"retrain {result.status}: {result.error} {(result.cause or '')[:400]}")
        failed = failed_step(sfn, execution)
        if failed:
            print(f"  {failed}")
        print("the live model is unchanged")
        return EXIT_FAILED
    data, decision = result.output["data"], result.output["decision"]
    print(
        f"data: {data['table_rows']} rows of {data['objects']} source object(s), {data['objects_read']} read this "
        f"run, {data['objects_dropped']} dropped; + {data['labelled_rows']} labelled rows"
    )
    print(f"gate: {decision['verdict']} {decision['candidate_version']} ({'; '.join(decision['reasons'])})")
    _print_pointer(target.registry().live())
    return 0


def failed_step(sfn: Any, execution: str) -> str | None:
    """'<step> failed: <error>: <cause>' for the last task that failed in `execution`, or None."""
    try:
        events = sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=100)["events"]
    except (BotoCoreError, ClientError):
        return None
    for index, event in enumerate(events):  # newest first
        details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
        if details:
            # The state it failed in is the newest one entered before it.
            entered = (e["stateEnteredEventDetails"]["name"] for e in events[index:] if "stateEnteredEventDetails" in e)
            step = next(entered, "a step")
            return f"{step} failed: {details.get('error')}: {str(details.get('cause', ''))[:400]}"
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # as the Makefile does
    from slipway.demo import DEMO_DIR, run_demo

    return run_demo(stage=args.stage, state_dir=Path(args.dir) if args.dir else DEMO_DIR)


def cmd_promote(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    _print_pointer(resolve(args.stage).registry().promote(args.version, args.reason))
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    _print_pointer(resolve(args.stage).registry().start_rollout(args.version, "shadow", args.percent, args.reason))
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    _print_pointer(resolve(args.stage).registry().start_rollout(args.version, "canary", args.percent, args.reason))
    return 0


def start_rollout(
    target: Any, version: str, reason: str, *, bake_seconds: int | None = None, settle_seconds: int | None = None
) -> tuple[str, int, int]:
    """Start the stage's rollout state machine for a registered `version`: (execution ARN, bake, settle seconds)."""
    from functions.adapters import factory
    from functions.adapters.retrain_control import StepFunctionsStarter
    from functions.rollout.steps import execution_input
    from slipway.executions import state_machine_arn
    from slipway.local.monitoring import LOCAL_SETTLE_SECONDS
    from stage.environments import capture_settle_seconds

    known = target.registry().store.list_versions()
    if version not in known:  # here, not in the state machine's first step
        raise RegistryError(f"unknown model version {version!r}; registered: {', '.join(known) or 'none'}")
    settings = target.settings
    bake = bake_seconds or settings.rollout.bake_minutes * 60
    settle = settle_seconds
    if settle is None:
        settle = LOCAL_SETTLE_SECONDS if target.local else capture_settle_seconds(settings)
    given = execution_input(version, reason, bake_seconds=bake, settle_seconds=settle)
    arn = state_machine_arn(target.names, target.names.rollout_state_machine)
    execution = StepFunctionsStarter(factory.client("stepfunctions"), arn).start(
        reason, extra={k: v for k, v in given.items() if k != "reason"}
    )
    return execution, bake, settle


def cmd_rollout(args: argparse.Namespace) -> int:
    from functions.adapters import factory
    from slipway.executions import StateMachineError, wait_for_execution
    from slipway.target import resolve

    target = resolve(args.stage)
    execution, bake, settle = start_rollout(
        target, args.version, args.reason, bake_seconds=args.bake_seconds, settle_seconds=args.settle_seconds
    )
    sfn = factory.client("stepfunctions")
    print(f"started {execution} (each phase bakes {bake} s)")
    if args.no_wait:
        return 0
    try:
        result = wait_for_execution(sfn, execution, timeout_seconds=2 * (bake + settle) + 600,
                                    poll_seconds=0.5 if target.local else 10)  # fmt: skip
    except StateMachineError as exc:
        print(f"slipway: {exc}")
        return EXIT_FAILED
    if not result.succeeded:
        print(f"rollout {result.status}: {result.error} {(result.cause or '')[:400]}; the live model is unchanged")
        return EXIT_FAILED
    for mode in ("shadow", "canary"):
        verdict = result.output.get(f"verdict_{mode}")
        if verdict:
            print(f"{mode}: {verdict['decision']} ({'; '.join(verdict['reasons']) or 'every check passed'})")
    print(result.output["outcome"]["reason"])
    _print_pointer(target.registry().live())
    return 0 if result.output["outcome"]["action"] == "promote" else EXIT_FAILED


def cmd_release(args: argparse.Namespace) -> int:
    from slipway.release import release_version
    from slipway.target import resolve

    target = resolve(args.stage)

    def rollout(target: Any, version: str, reason: str) -> str:
        return start_rollout(target, version, reason)[0]

    released = release_version(
        target,
        args.source,
        args.version,
        reason=args.reason,
        allow_spec_change=args.allow_spec_change,
        start_rollout=rollout,
    )
    record = released.record
    if args.json:
        print(json.dumps({"made": released.made, "execution": released.execution, **record.model_dump(mode="json")}))
        return 0
    print(f"released {record.version} from {record.source_stage} to {record.target_stage} (sha256 {record.digest})")
    print(f"  gate in {record.source_stage}: {record.gate.verdict} at {record.gate.decided_at:%Y-%m-%d %H:%M} "
          f"({'; '.join(record.gate.reasons)})")  # fmt: skip
    if record.rollout is not None:
        print(f"  rollout in {record.source_stage}: {record.rollout.run_id} {record.rollout.action}")
    if record.spec_differences:
        print(f"  feature spec changed (allowed): {'; '.join(record.spec_differences)}")
    print(
        {
            "promoted": f"live in {record.target_stage}",
            "rollout": f"rolling out in {record.target_stage}: {released.execution} (its figures decide)",
            "registered": f"registered in {record.target_stage}; a person promotes it (retrain.rollout manual)",
            "unchanged": f"already live in {record.target_stage}",
        }[released.made]
    )
    _print_pointer(target.registry().live())
    return 0


def cmd_stop_rollout(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    _print_pointer(resolve(args.stage).registry().end_rollout())
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from slipway.target import resolve

    _print_pointer(resolve(args.stage).registry().rollback(args.reason))
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from slipway.smoke import smoke_test

    return smoke_test(stage=args.stage, url=args.url, api_key=os.environ.get("SLIPWAY_API_KEY") or None)


def _print_pointer(pointer: LivePointer) -> None:
    when = pointer.at.isoformat(timespec="seconds") if pointer.at else "-"
    print(
        f"live: {pointer.version or 'none'} (previous {pointer.previous or 'none'}; "
        f"{pointer.action} at {when}: {pointer.reason or '-'})"
    )
    rollout = pointer.rollout
    if rollout is not None:
        share = "answers" if rollout.mode == "canary" else "also scores"
        print(
            f"{rollout.mode}: {rollout.candidate} {share} {rollout.percent:g} % of requests "
            f"(since {rollout.started_at.isoformat(timespec='seconds')}: {rollout.reason or '-'})"
        )
    else:
        print("rollout: none")


def _code_revision() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
