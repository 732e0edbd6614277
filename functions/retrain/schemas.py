"""What the retrain steps pass each other through the state machine (each step's input and output)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PrepareInput(_Message):
    run_id: str = Field(min_length=1)
    reason: str = "manual"


class PreparedData(_Message):
    """The snapshot one run trains on: where its record is, the record's hash, and what it is made of."""

    run_id: str
    reason: str
    data_key: str = Field(description="The run's snapshot record (functions.lake.ingest.Snapshot).")
    data_hash: str = Field(description="SHA-256 of the snapshot record.")
    rows: int
    table_rows: int = Field(description="Rows of the source's objects in the table.")
    labelled_rows: int = Field(description="Rows labelled through feedback, added by this run.")
    labelled_capped: int = Field(0, description="Labelled rows left out by the label caps (retrain.label_caps).")
    objects: int = Field(description="Source objects in the table.")
    objects_read: int = Field(description="Of them, read by this run (new or changed).")
    objects_dropped: int = Field(description="Deleted, replaced or expired objects this run dropped.")
    watermark: datetime | None = Field(description="Upload time of the newest object.")


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
