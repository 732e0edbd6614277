"""Stage settings: one source of truth, read from `cdk.json` and validated once.

Every default lives here, in the models, and nowhere else. `cdk.json` holds only what differs:
per-stage overrides under `slipway:stages`, optionally `slipway:defaults` (overrides shared by
every stage) and `slipway:emulator` (what an AWS emulator needs). `docs/settings.md` is generated
from these models (`python -m stage.reference`). The CDK app, the local stack and the CLI all call
`load_settings(stage)`; constructs and handlers receive the parsed values as
arguments or environment variables, never by reading `cdk.json` themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from functions.core.data_source import DataSource
from functions.core.rollout import RolloutPolicy
from functions.inference.config import FrontDoorType
from functions.monitor.config import MonitorPolicy
from functions.retrain.config import RetrainPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
_SCHEDULE = re.compile(r"^(cron\(.+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")


def _schedule(value: str) -> str:
    if not _SCHEDULE.match(value):
        raise ValueError("must be an EventBridge expression: cron(...) or rate(N unit)")
    return value


# An EventBridge (Scheduler) expression: cron(...) or rate(N unit).
Schedule = Annotated[str, AfterValidator(_schedule)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InferenceSettings(_Section):
    """The inference function."""

    memory_mb: int = Field(1024, ge=128, le=10240, description="The function's memory (and so its CPU share).")
    timeout_seconds: int = Field(10, ge=1, le=29, description="API Gateway stops waiting at 29 s.")
    architecture: Literal["arm64", "x86_64"] = Field(
        "arm64", description="The CPU of every function; arm64 (Graviton) costs about 20 % less per GB-second."
    )
    runtime: Literal["python3.12", "python3.13", "python3.14"] = Field(
        "python3.12", description="The Lambda runtime of every function of the stage; each has its packages built."
    )
    snap_start: bool | None = Field(
        None,
        description="Lambda SnapStart on the inference function's published versions (the `live` alias). Unset: on "
        "exactly where provisioned concurrency is off, as the two cannot be combined (StageSettings.snap_start).",
    )
    reserved_concurrency: int | None = Field(
        None, ge=1, description="Concurrent executions reserved for (and capping) the inference function; None: none."
    )
    max_instances: int = Field(1000, ge=1, le=10000, description="Rows one /predict request may carry.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=10_485_760, description="Larger request bodies are refused with 413."
    )
    pointer_refresh_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description="How often a warm container re-reads the live pointer: how soon a promotion reaches it.",
    )
    model_name: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="The name the Open Inference Protocol serves the model under (/v2/models/{name}) and GET /model "
        "shows. Unset: the recipe module's last part (`model.examples.iris` is `iris`), so the name says which "
        "recipe answers and clients' URLs stay as they are; set it to keep one name across a change of recipe.",
    )


class ScheduledScaling(_Section):
    """Provisioned-concurrency bounds applied on a schedule (e.g. business hours)."""

    name: str = Field(pattern=r"^[A-Za-z0-9-]+$")
    schedule: str
    min: int = Field(ge=0)
    max: int = Field(ge=1)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not value.startswith(("cron(", "rate(", "at(")):
            raise ValueError("must be cron(...), rate(...) or at(...)")
        return value


class ProvisionedConcurrencySettings(_Section):
    """Provisioned concurrency on the `live` alias, autoscaled on utilisation."""

    enabled: bool = Field(False, description="Provisioned concurrency on the `live` alias.")
    min: int = Field(1, ge=1, description="Autoscaling's lower bound.")
    max: int = Field(10, ge=1, description="Autoscaling's upper bound.")
    target_utilization: float = Field(0.7, gt=0.1, le=0.9, description="Target tracking on utilisation.")
    schedules: tuple[ScheduledScaling, ...] = Field(
        (), description='Scheduled bounds: {"name", "schedule": "cron(...)", "min", "max"}.'
    )

    @model_validator(mode="after")
    def _bounds(self) -> ProvisionedConcurrencySettings:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


# The front doors, and the authentication each one offers.
FRONT_DOOR_AUTH: dict[str, tuple[str, ...]] = {
    "rest": ("api_key", "iam"),
    "http": ("iam", "jwt"),
    "function_url": ("iam",),
}
# Settings only some front doors have (each named here is refused, set away from its default, on the others).
_FRONT_DOOR_ONLY: dict[str, tuple[str, ...]] = {
    "clients": ("rest",),
    "metering_keys": ("rest",),
    "quota_per_day": ("rest",),
    "tls_policy": ("rest",),
    "waf": ("rest",),
    "waf_rate_limit": ("rest",),
    "writers": ("rest",),
    "throttle_rate": ("rest", "http"),
    "throttle_burst": ("rest", "http"),
    "write_throttle_rate": ("rest", "http"),
    "write_throttle_burst": ("rest", "http"),
    "jwt_issuer": ("http",),
    "jwt_audience": ("http",),
}


class ApiSettings(_Section):
    """The front door: its type, authentication and throttling."""

    type: FrontDoorType = Field(
        "rest",
        description="rest: API Gateway REST API (API keys, usage plans, per-route throttling, WAF); http: API "
        "Gateway HTTP API (IAM or JWT auth, per-route throttling, cheaper); function_url: a Lambda function URL on "
        "the `live` alias (IAM auth only, no API Gateway: no throttle but inference.reserved_concurrency). "
        "docs/deploy.md compares them.",
    )
    auth: Literal["api_key", "iam", "jwt"] = Field(
        "api_key",
        description="api_key (rest): a key per client (identifies, meters); iam (every type): SigV4, with "
        "api.invokers (and on rest api.writers) naming exactly who may call and who may write; jwt (http): a bearer "
        "token from api.jwt_issuer for api.jwt_audience.",
    )
    invokers: tuple[str, ...] = Field(
        (),
        description="auth iam: the IAM principals (ARNs; * wildcards allowed on rest) that may call the API, and "
        "no one else; empty: any principal of this account that an IAM policy allows. On http, which has no resource "
        "policy, it must stay empty: callers are granted execute-api:Invoke in their own policies.",
    )
    writers: tuple[str, ...] | None = Field(
        None,
        description="auth iam, rest: the principals that may call the write routes (POST /feedback, POST "
        "/predict/async), and no one else; unset: the invokers.",
    )
    jwt_issuer: str | None = Field(
        None,
        pattern=r"^https://\S+$",
        description="auth jwt: the token issuer's URL (its OpenID discovery document lists the signing keys).",
    )
    jwt_audience: tuple[str, ...] = Field(
        (), description="auth jwt: the audiences (`aud` or `client_id` claims) a token must name, at least one."
    )
    throttle_rate: float = Field(100, gt=0, description="Steady-state requests per second (rest, http).")
    throttle_burst: int = Field(
        200, ge=1, description="Burst above the steady rate, stage-wide and per usage plan (rest, http)."
    )
    write_throttle_rate: float = Field(
        10, gt=0, description="Steady-state requests per second on each write route (labels, async jobs; rest, http)."
    )
    write_throttle_burst: int = Field(20, ge=1, description="Burst of each write route (rest, http).")
    quota_per_day: int = Field(1_000_000, ge=1, description="auth api_key: each client's requests per day.")
    clients: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")], ...] = Field(
        ("client",),
        min_length=1,
        description="auth api_key: one API key per client, each under its own usage plan (throttle and quota), "
        "so one client's traffic is metered and revoked alone; the first is the one `slipway smoke` uses.",
    )
    metering_keys: bool = Field(
        False,
        description="auth iam: also require each client's API key (api.clients), for its usage plan's throttle and "
        "daily quota; SigV4 still authenticates, the key only meters.",
    )
    tls_policy: Literal[
        "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09",
        "SecurityPolicy_TLS13_1_3_2025_09",
        "SecurityPolicy_TLS13_1_2_2021_06",
    ] = Field(
        "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09",
        description="The REST API's enhanced TLS policy (endpoint access mode STRICT): TLS 1.2 with forward secrecy "
        "and post-quantum key exchange, or TLS 1.3 only.",
    )
    waf: bool = Field(
        False,
        description="rest: an AWS WAF web ACL on the stage (AWS's common and known-bad-inputs rule groups, and a "
        "per-IP rate rule). Off by default: it has a fixed monthly fee per ACL and rule, worth it where the API "
        "faces the internet with real traffic (prod turns it on in cdk.json); throttling and auth already guard dev.",
    )
    waf_rate_limit: int = Field(
        2000,
        ge=10,
        le=2_000_000_000,
        description="api.waf: requests one IP address may send in 5 minutes before WAF blocks it.",
    )

    @property
    def keys_required(self) -> bool:
        """Whether every method needs an API key (always under api_key; under iam, to meter)."""
        return self.auth == "api_key" or self.metering_keys

    @field_validator("clients")
    @classmethod
    def _unique_clients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("client names must be unique")
        return value

    @model_validator(mode="after")
    def _fits_the_front_door(self) -> ApiSettings:
        offered = FRONT_DOOR_AUTH[self.type]
        if self.auth not in offered:
            raise ValueError(
                f"api.auth {self.auth} is not offered by api.type {self.type}: set api.auth to one of {list(offered)}"
            )
        for name, types in _FRONT_DOOR_ONLY.items():
            if self.type not in types and getattr(self, name) != type(self).model_fields[name].default:
                raise ValueError(
                    f"api.{name} applies to api.type {' or '.join(types)} only, not {self.type}: remove it"
                )
        if self.auth == "jwt" and (self.jwt_issuer is None or not self.jwt_audience):
            raise ValueError("api.auth jwt needs api.jwt_issuer and at least one api.jwt_audience")
        if self.auth != "jwt" and (self.jwt_issuer is not None or self.jwt_audience):
            raise ValueError("api.jwt_issuer and api.jwt_audience apply to api.auth jwt only")
        if self.type == "http" and self.invokers:
            raise ValueError(
                "api.invokers needs a resource policy, which an HTTP API lacks: grant execute-api:Invoke in the "
                "callers' own IAM policies, or use api.type rest"
            )
        if self.type == "function_url" and any("*" in invoker for invoker in self.invokers):
            raise ValueError("api.invokers of a function URL are exact ARNs: a Lambda permission takes no wildcard")
        return self


class LogSettings(_Section):
    """CloudWatch log groups."""

    retention_days: int = Field(30, description="Days every log group keeps its events (a CloudWatch Logs value).")
    protect_inference: bool = Field(
        False,
        description="The inference function's log (which carries captured rows) under a customer-managed KMS key, "
        "with a data-protection policy that masks e-mail addresses, AWS secret keys and private keys.",
    )

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {LOG_RETENTION_DAYS}")
        return value


class AlarmSettings(_Section):
    """Alarm thresholds and where alarms are sent."""

    email: EmailStr | None = Field(None, description="An e-mail subscription to the alarm topic.")
    error_5xx_rate_percent: float = Field(1.0, gt=0, le=100, description="API 5xx responses over 5 minutes.")
    p99_latency_ms: float = Field(500, gt=0, description="The API's p99 latency over 5 minutes.")
    throttles_per_5min: int = Field(10, ge=1, description="Throttled inference invocations over 5 minutes.")
    fallback_rate_percent: float = Field(
        1.0, gt=0, le=100, description="Rows answered by the last good model (the live one failed) over 5 minutes."
    )
    invalid_request_rate_percent: float = Field(
        10.0, gt=0, le=100, description="Requests refused as invalid (4xx) over 5 minutes."
    )
    outlier_rate_percent: float = Field(
        5.0, gt=0, le=100, description="Rows flagged as outliers over 5 minutes (the detector flags 1 % of training)."
    )
    monthly_budget_usd: float = Field(
        100,
        ge=0,
        description="An AWS Budgets cost budget for the stage's resources (those tagged slipway:stage=<stage>, a "
        "cost allocation tag to activate once in the Billing console): the alarm topic hears of 80 % spent and of "
        "a forecast over 100 %; 0: no budget.",
    )
    metric_math: bool = Field(
        True,
        description="Rate alarms as metric math (100 * n / d); false: plain alarms on any count of n, for an "
        "AWS emulator that rejects metric math.",
    )


class RetrainSettings(_Section, RetrainPolicy):
    """The retrain pipeline: its triggers, its gate, where training runs, automatic rollback.
    What its functions read is RetrainPolicy's."""

    schedule: Schedule = Field("cron(0 3 ? * MON *)", description="When the scheduled retrain runs.")
    rollout: Literal["immediate", "shadow", "canary", "manual"] = Field(
        "canary",
        description="After the gate: promote at once, roll the candidate out (shadow; canary = shadow, then "
        "canary) and let its figures decide (the `rollout` section), or (manual) register it and ask a person, "
        "by the alarm topic, to promote it.",
    )
    engine: Literal["lambda", "sagemaker"] = Field(
        "lambda",
        description="Where the Train step fits: a Lambda function, or a SageMaker training job for larger data.",
    )
    train_memory_mb: int = Field(3008, ge=512, le=10240, description="Memory of the Lambda Train step.")
    train_timeout_seconds: int = Field(
        900, ge=60, le=900, description="Lambda's limit is 900 s; beyond, use sagemaker."
    )
    step_timeout_seconds: int = Field(300, ge=30, le=900, description="Timeout of the other retrain steps.")
    sagemaker_image_uri: str | None = Field(
        None,
        pattern=r"^[^\s@]+@sha256:[0-9a-f]{64}$",
        description="Engine 'sagemaker': another training image (ECR URI, Python 3.11+, SageMaker script mode), named "
        "by digest (<repository>@sha256:<64 hex>) so that nobody can move it; default: AWS's prebuilt scikit-learn "
        "image of the stage's region (infra/sagemaker.py).",
    )
    sagemaker_instance_type: str = Field(
        "ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="Engine 'sagemaker': the training instance."
    )
    sagemaker_instance_count: Literal[1] = Field(
        1,
        description="One: a scikit-learn fit runs on one machine; more instances would each fit the same model "
        "(SageMaker gives every instance the whole channel), costing more for nothing.",
    )
    sagemaker_volume_gb: int = Field(30, ge=1, le=16384, description="Engine 'sagemaker': the job's disk.")
    sagemaker_max_runtime_seconds: int = Field(
        86400, ge=60, le=432000, description="Engine 'sagemaker': the job is stopped after this."
    )


class CaptureSettings(_Section):
    """Data capture for drift monitoring."""

    sampling_rate: float = Field(1.0, ge=0, le=1, description="Share of /predict requests captured for monitoring.")


class MonitorSettings(_Section, MonitorPolicy):
    """The drift monitor: schedule, window, drift policy (thresholds per feature), the quality alarm, and the
    segments' minimum rows and gap alarm (bias across segments). What the function reads is MonitorPolicy's."""

    schedule: Schedule = Field("rate(1 hour)", description="EventBridge Scheduler expression of the monitor runs.")
    memory_mb: int = Field(1024, ge=128, le=10240, description="The function's memory (and so its CPU share).")
    timeout_seconds: int = Field(300, ge=10, le=900, description="The function's timeout.")
    capture_buffer_seconds: int = Field(300, ge=0, le=900, description="Firehose buffering before an S3 write.")
    quality_alarm_below: float | None = Field(
        0.8, description="Alarm when the live metric falls below this (metrics where higher is better)."
    )
    quality_alarm_above: float | None = Field(
        None, description="Alarm when the live metric rises above this (errors such as rmse, log_loss)."
    )


class RolloutSettings(_Section):
    """A candidate's rollout: the shares, how long each phase bakes, and when its figures pass."""

    shadow_percent: float = Field(100, gt=0, le=100, description="Share of requests the candidate also scores.")
    canary_percent: float = Field(10, gt=0, le=100, description="Share of requests the candidate answers.")
    bake_minutes: int = Field(60, ge=1, le=1440, description="How long each phase runs before its figures count.")
    policy: RolloutPolicy = RolloutPolicy()
    function_memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of the rollout's functions.")
    timeout_seconds: int = Field(300, ge=10, le=900, description="The function's timeout.")


class StorageSettings(_Section):
    """The artifacts bucket."""

    retain_data: bool = Field(False, description="Keep the bucket and its objects on `cdk destroy`.")


class AsyncSettings(_Section):
    """Async predictions: the requests queue, its worker, the dead-letter queue and its fallback."""

    worker_memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of the async worker.")
    worker_timeout_seconds: int = Field(
        60,
        ge=5,
        le=900,
        description="The async worker's timeout; the queue's visibility is visibility_timeout_factor times it.",
    )
    batch_size: int = Field(10, ge=1, le=10, description="Messages per worker invocation.")
    max_batching_window_seconds: int = Field(
        1, ge=0, le=300, description="How long the queue gathers a batch for the worker."
    )
    max_receive_count: int = Field(3, ge=1, le=1000, description="Receives before a job goes to the dead letters.")
    visibility_timeout_factor: int = Field(6, ge=2, le=12, description="Queue visibility = factor x worker timeout.")
    dead_letter_alarm_threshold: int = Field(1, ge=1, description="Dead letters that fire the DLQ-depth alarm.")
    result_retention_days: int = Field(7, ge=1, le=3650, description="Days async requests and results are kept.")
    worker_max_concurrency: int = Field(
        5,
        ge=2,
        le=1000,
        description="Worker instances the queue may run at once: a flood of jobs cannot take the "
        "account's concurrency from /predict.",
    )

    # SQS's longest retention: a message even the fallback cannot handle waits there for a fix.
    dead_letter_retention_seconds: ClassVar[int] = 14 * 24 * 3600

    @property
    def visibility_timeout_seconds(self) -> int:
        """The requests queue's visibility timeout: a multiple of the worker's timeout (AWS recommends 6)."""
        return self.worker_timeout_seconds * self.visibility_timeout_factor


class BatchSettings(_Section):
    """Batch scoring of files: the Distributed Map and its scoring function."""

    scoring_memory_mb: int = Field(2048, ge=128, le=10240, description="Memory of the batch scoring function.")
    scoring_timeout_seconds: int = Field(900, ge=30, le=900, description="Timeout of scoring one file.")
    max_concurrency: int = Field(10, ge=1, le=10000, description="Objects scored at once.")


class PipelineSettings(_Section):
    """The deploy pipeline (GitHub Actions, docs/pipeline.md): who may assume the stage's deploy role
    (`cdk deploy -c stage=<stage> -c pipeline=true` creates it), and which stages it releases from or to."""

    github_repository: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+$",
        description="The GitHub repository (owner/name) whose workflows may assume the deploy role; required to "
        "create the role.",
    )
    branch: str = Field(
        "main", pattern=r"^[A-Za-z0-9_./-]+$", description="The branch whose workflow runs may assume the role."
    )
    environment: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The GitHub environment (its required reviewers approve each run) whose jobs may assume the "
        "role; None: the jobs of `branch` that name no environment.",
    )
    release_from: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9]{1,10}$",
        description="The stage whose models `slipway release` copies into this one (its deploy role may read that "
        "stage's bundles and records).",
    )
    release_to: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,10}$")], ...] = Field(
        (),
        description="The stages that release from this one when they are in another account: each one's deploy "
        "role may assume this stage's release reader (read-only: models/, gate decisions, rollout outcomes, the "
        "pointer's history).",
    )
    create_oidc_provider: bool = Field(
        True,
        description="Create GitHub's OIDC identity provider; false when another stage's stack in the same account "
        "already did (an account holds it once).",
    )
    cdk_qualifier: str = Field(
        "hnb659fds",
        pattern=r"^[a-z0-9]{1,10}$",
        description="The qualifier of the account's `cdk bootstrap`: the deploy role may assume only its roles.",
    )


class StageSettings(_Section):
    """Every deployment setting of one stage."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    stage: str = Field(pattern=r"^[a-z][a-z0-9]{1,10}$")
    region: str = Field(
        "us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="The AWS region the stage deploys to."
    )
    account: str | None = Field(
        None,
        pattern=r"^\d{12}$",
        description="The AWS account the stage deploys to (12 digits); None: the caller's. Commands refuse other "
        "credentials, and `slipway release` reads another account's stage through its release reader role.",
    )
    inference: InferenceSettings = InferenceSettings()
    provisioned_concurrency: ProvisionedConcurrencySettings = ProvisionedConcurrencySettings()
    api: ApiSettings = ApiSettings()
    logs: LogSettings = LogSettings()
    alarms: AlarmSettings = AlarmSettings()
    # Where the training data lives (functions.core.data_source): the recipe's load_data(), or S3 prefixes.
    data: DataSource = DataSource()
    recipe: str = Field(
        "model.recipe",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="The recipe module, by its import path, that the stage trains, serves and retrains (`slipway "
        "train`, `up`, `check` and the retrain pipeline load it): model.examples.penguins runs the second example "
        "as it is.",
    )
    retrain: RetrainSettings = RetrainSettings()
    capture: CaptureSettings = CaptureSettings()
    monitor: MonitorSettings = MonitorSettings()
    rollout: RolloutSettings = RolloutSettings()
    storage: StorageSettings = StorageSettings()
    async_jobs: AsyncSettings = AsyncSettings()
    batch: BatchSettings = BatchSettings()
    pipeline: PipelineSettings = PipelineSettings()

    @model_validator(mode="after")
    def _snap_start_alone(self) -> StageSettings:
        if self.inference.snap_start and self.provisioned_concurrency.enabled:
            raise ValueError(
                "inference.snap_start cannot be combined with provisioned_concurrency.enabled (Lambda refuses both "
                "on one version): turn one off, or leave inference.snap_start unset to follow provisioned concurrency"
            )
        return self

    @property
    def snap_start(self) -> bool:
        """Whether the inference function's versions are snapshotted: the setting, else where provisioned
        concurrency is off (its pre-initialised containers already keep cold starts off the request path)."""
        if self.inference.snap_start is None:
            return not self.provisioned_concurrency.enabled
        return self.inference.snap_start


class SettingsError(ValueError):
    """A stage's settings are missing or invalid; the message names the setting."""


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def settings_from_context(context: dict[str, Any], stage: str, *, emulator: bool = False) -> StageSettings:
    """Validate the settings of `stage` from a CDK context mapping.

    `emulator` applies the `slipway:emulator` overrides on top (the short, documented list of what
    an AWS emulator needs differently; docs/deploy.md).
    """
    stages: dict[str, Any] = context.get("slipway:stages", {})
    if stage not in stages:
        raise SettingsError(f"unknown stage {stage!r}: cdk.json defines {sorted(stages)} under 'slipway:stages'")
    raw = _merge(context.get("slipway:defaults", {}), stages[stage] or {})
    if emulator:
        raw = _merge(raw, context.get("slipway:emulator", {}))
    raw.update(project=context.get("slipway:project", "slipway"), stage=stage)
    try:
        return StageSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings for stage {stage!r}: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    """Each broken rule as `dotted.setting: message`."""
    return "; ".join(
        ": ".join(filter(None, (".".join(str(part) for part in error["loc"]), error["msg"]))) for error in exc.errors()
    )


def with_overrides(settings: StageSettings, overrides: dict[str, Any]) -> StageSettings:
    """`settings` with `overrides` (nested as cdk.json writes a stage's) applied and validated again."""
    raw = _merge(settings.model_dump(mode="json", exclude={"project", "stage"}), overrides)
    raw.update(project=settings.project, stage=settings.stage)
    try:
        return StageSettings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings for stage {settings.stage!r}: {_problems(exc)}") from exc


def load_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of cdk.json."""
    return dict(json.loads(path.read_text())["context"])


def load_settings(stage: str = "dev", path: Path = CDK_JSON, *, emulator: bool = False) -> StageSettings:
    """The validated settings of `stage` as declared in cdk.json (with the emulator overrides when `emulator`)."""
    return settings_from_context(load_context(path), stage, emulator=emulator)
