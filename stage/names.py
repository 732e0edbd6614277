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


@dataclass(frozen=True, kw_only=True)
class ResourceNames:
    """Physical names of one stage's resources."""

    project: str
    stage: str
    account: str
    region: str

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
    def break_glass_role(self) -> str:
        """The one role that may delete a retained stage's model bundles: created by hand, only when needed."""
        return f"{self.prefix}-break-glass"

    @property
    def deploy_role(self) -> str:
        """The role the stage's pipeline assumes by OIDC (infra/pipeline_access.py)."""
        return f"{self.prefix}-deploy"

    @property
    def release_reader_role(self) -> str:
        """The read-only role another account's deploy role assumes to release this stage's models."""
        return f"{self.prefix}-release-reader"

    @property
    def pipeline_access_stack(self) -> str:
        return f"{self.prefix}-pipeline-access"

    @property
    def access_logs_bucket(self) -> str:
        return f"{self.prefix}-access-logs-{self.account}-{self.region}"

    @property
    def live_pointer_parameter(self) -> str:
        return f"/{self.project}/{self.stage}/live-model"

    @property
    def inference_function(self) -> str:
        return f"{self.prefix}-inference"

    @property
    def api(self) -> str:
        return f"{self.prefix}-api"

    @property
    def metrics_namespace(self) -> str:
        return f"Slipway/{self.stage}"

    @property
    def inference_service(self) -> str:
        return f"{self.project}-inference"

    @property
    def monitor_function(self) -> str:
        return f"{self.prefix}-monitor"

    @property
    def monitor_service(self) -> str:
        return f"{self.project}-monitor"

    @property
    def monitor_schedule(self) -> str:
        return f"{self.prefix}-monitor"

    @property
    def capture_stream(self) -> str:
        return f"{self.prefix}-capture"

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    @property
    def dashboard(self) -> str:
        return f"{self.prefix}-dashboard"

    @property
    def budget(self) -> str:
        return f"{self.prefix}-monthly-cost"

    @property
    def failed_invocations_queue(self) -> str:
        return f"{self.prefix}-failed-invocations"

    @property
    def requests_queue(self) -> str:
        return f"{self.prefix}-async-requests"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-async-dead-letters"

    def queue_url(self, queue_name: str) -> str:
        """A queue's URL (the local stack's clients send it to moto through AWS_ENDPOINT_URL)."""
        return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{queue_name}"

    @property
    def async_worker_function(self) -> str:
        return f"{self.prefix}-async-worker"

    @property
    def async_fallback_function(self) -> str:
        return f"{self.prefix}-async-fallback"

    @property
    def batch_plan_function(self) -> str:
        return f"{self.prefix}-batch-plan"

    @property
    def batch_score_function(self) -> str:
        return f"{self.prefix}-batch-score"

    @property
    def batch_state_machine(self) -> str:
        return f"{self.prefix}-batch-scoring"

    @property
    def retrain_state_machine(self) -> str:
        return f"{self.prefix}-retrain"

    def retrain_function(self, step: str) -> str:
        """One retrain step's function: prepare, train, evaluate, register, promote, trigger, rollback."""
        return f"{self.prefix}-retrain-{step}"

    @property
    def retrain_service(self) -> str:
        return f"{self.project}-retrain"

    @property
    def rollout_state_machine(self) -> str:
        return f"{self.prefix}-rollout"

    def rollout_function(self, step: str) -> str:
        """One rollout step's function: start, judge, finish, launch."""
        return f"{self.prefix}-rollout-{step}"

    @property
    def rollout_service(self) -> str:
        return f"{self.project}-rollout"

    @property
    def retrain_schedule(self) -> str:
        return f"{self.prefix}-retrain-schedule"
