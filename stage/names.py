"""Resource names, derived once from the stage settings.

The CDK app and the local stack both build their resources from
`ResourceNames`, so a bucket or parameter has the same name in both places.
`account` and `region` are CDK tokens at synth time and plain strings locally.
"""

from __future__ import annotations

from dataclasses import dataclass

from stage.settings import StageSettings

# Every resource of a stage carries this tag with the stage's name: the cost budget counts by it.
COST_TAG = "slipway:stage"

# The account moto uses, so the local stack's names look like real ones.
LOCAL_ACCOUNT = "123456789012"


class _Prefixed:
    """A name of the stage's own: `<project>-<stage>-<suffix>`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __get__(self, names: ResourceNames, owner: type[ResourceNames] | None = None) -> str:
        return f"{names.prefix}-{self.suffix}"


class _ProjectWide(_Prefixed):
    """A name every stage of the project shares: `<project>-<suffix>` (a function's service in its telemetry)."""

    def __get__(self, names: ResourceNames, owner: type[ResourceNames] | None = None) -> str:
        return f"{names.project}-{self.suffix}"


@dataclass(frozen=True, kw_only=True)
class ResourceNames:
    """Physical names of one stage's resources."""

    project: str
    stage: str
    account: str
    region: str

    # Roles, and the stack that holds the pipeline's.
    # The one role that may delete a retained stage's model bundles: created by hand, only when needed.
    break_glass_role = _Prefixed("break-glass")
    deploy_role = _Prefixed("deploy")  # the role the stage's pipeline assumes by OIDC (infra/pipeline_access.py)
    # The read-only role another account's deploy role assumes to release this stage's models.
    release_reader_role = _Prefixed("release-reader")
    pipeline_access_stack = _Prefixed("pipeline-access")
    # Serving and its async and batch paths.
    inference_function = _Prefixed("inference")
    api = _Prefixed("api")
    failed_invocations_queue = _Prefixed("failed-invocations")
    requests_queue = _Prefixed("async-requests")
    dead_letter_queue = _Prefixed("async-dead-letters")
    async_worker_function = _Prefixed("async-worker")
    async_fallback_function = _Prefixed("async-fallback")
    batch_plan_function = _Prefixed("batch-plan")
    batch_score_function = _Prefixed("batch-score")
    batch_state_machine = _Prefixed("batch-scoring")
    # Monitoring.
    monitor_function = _Prefixed("monitor")
    monitor_schedule = _Prefixed("monitor")
    capture_stream = _Prefixed("capture")
    alarm_topic = _Prefixed("alarms")
    dashboard = _Prefixed("dashboard")
    budget = _Prefixed("monthly-cost")
    # Retraining and rollout.
    retrain_state_machine = _Prefixed("retrain")
    retrain_schedule = _Prefixed("retrain-schedule")
    rollout_state_machine = _Prefixed("rollout")
    # The services the functions' logs, traces and metrics name.
    inference_service = _ProjectWide("inference")
    monitor_service = _ProjectWide("monitor")
    retrain_service = _ProjectWide("retrain")
    rollout_service = _ProjectWide("rollout")

    @classmethod
    def of(cls, settings: StageSettings, *, account: str, region: str) -> ResourceNames:
        return cls(project=settings.project, stage=settings.stage, account=account, region=region)

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stage}"

    @property
    def stack(self) -> str:
        return self.prefix

    @property
    def artifacts_bucket(self) -> str:
        return f"{self.prefix}-artifacts-{self.account}-{self.region}"

    @property
    def access_logs_bucket(self) -> str:
        return f"{self.prefix}-access-logs-{self.account}-{self.region}"

    @property
    def live_pointer_parameter(self) -> str:
        return f"/{self.project}/{self.stage}/live-model"

    @property
    def metrics_namespace(self) -> str:
        return f"Slipway/{self.stage}"

    def queue_url(self, queue_name: str) -> str:
        """A queue's URL (the local stack's clients send it to moto through AWS_ENDPOINT_URL)."""
        return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{queue_name}"

    def retrain_function(self, step: str) -> str:
        """One retrain step's function: prepare, train, evaluate, register, promote, trigger, rollback."""
        return f"{self.prefix}-retrain-{step}"

    def rollout_function(self, step: str) -> str:
        """One rollout step's function: start, judge, finish, launch."""
        return f"{self.prefix}-rollout-{step}"
