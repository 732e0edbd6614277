"""What the retrain steps pass each other through the state machine (each step's input and output)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PrepareInput(_Message):
    run_id: str = Field(min_length=1)
    reason: str = "manual"


class PreparedData(_Message):
    """The table one run trains on: where it is, its hash and what it was made of."""

    run_id: str
    reason: str
    data_key: str
    data_hash: str
    rows: int
    base_rows: int
    labelled_rows: int


class TrainInput(_Message):
    data: PreparedData


class Candidate(_Message):
    """A trained, exported and parity-checked bundle, stored under its version but not registered."""

    version: str
    metric: str
    score: float
    parity_max_abs_diff: float
    data_hash: str


class CollectInput(_Message):
    """The run and the SageMaker training job that trained its candidate (engine 'sagemaker')."""

    data: PreparedData
    training_job: str = Field(min_length=1)


class EvaluateInput(_Message):
    data: PreparedData
    candidate: Candidate


class DecisionSummary(_Message):
    """The gate's verdict as the state machine branches on it; the full decision is in S3 at `decision_key`."""

    verdict: str
    candidate_version: str
    live_version: str | None
    reasons: list[str]
    decision_key: str


class VersionInput(_Message):
    version: str
    reason: str = "retrain"


class Registered(_Message):
    version: str
    created: bool


class Promoted(_Message):
    live: str | None
    previous: str | None
