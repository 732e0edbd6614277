"""Where things live in the artifacts bucket: the one definition of the key layout."""

from __future__ import annotations

MODELS_PREFIX = "models/"
CAPTURE_PREFIX = "capture/"
CAPTURE_ERRORS_PREFIX = "capture-errors/"  # Firehose's failed deliveries
REPORTS_PREFIX = "reports/"
# The last cycles' estimated and realized quality, which each HTML report draws over time.
QUALITY_HISTORY_KEY = f"{REPORTS_PREFIX}quality-history.json"
FEEDBACK_PREFIX = "feedback/"
DATA_PREFIX = "data/"
# Async jobs: the request a client posted and the one result it gets (claim-check: SQS carries only the id).
ASYNC_PREFIX = "async/"
ASYNC_REQUESTS_PREFIX = "async/requests/"
ASYNC_RESULTS_PREFIX = "async/results/"
ASYNC_POISON_PREFIX = "async/poison/"  # dead letters that name no job, kept as they arrived
# Batch scoring: inputs, outputs, the delta ledger and run manifests all live under this prefix.
BATCH_PREFIX = "batch/"
BATCH_RUNS_PREFIX = "batch/_runs/"

MODEL_FILE = "model.onnx"
CHANNEL_MANIFEST_FILE = "channel.manifest"
MANIFEST_FILE = "manifest.json"


def model_key(version: str) -> str:
    """Key of a version's ONNX graph."""
    return f"{MODELS_PREFIX}{version}/{MODEL_FILE}"


def manifest_key(version: str) -> str:
    """Key of a version's manifest."""
    return f"{MODELS_PREFIX}{version}/{MANIFEST_FILE}"


def async_request_key(job_id: str) -> str:
    """Key of an async job's request body."""
    return f"{ASYNC_REQUESTS_PREFIX}{job_id}.json"


def async_result_key(job_id: str) -> str:
    """Key of an async job's one result."""
    return f"{ASYNC_RESULTS_PREFIX}{job_id}.json"


def async_poison_key(message_id: str) -> str:
    """Key of a poison dead letter's body, by its SQS message id."""
    return f"{ASYNC_POISON_PREFIX}{message_id}.txt"


# The training data: the recipe's table as landed (data.kind "recipe"), and the accumulated
# table, one Parquet part per source object, with its ledger (what each part was read from).
RECIPE_SOURCE_PREFIX = f"{DATA_PREFIX}sources/recipe/"
RECIPE_SOURCE_KEY = f"{RECIPE_SOURCE_PREFIX}table.parquet"
TABLE_PREFIX = f"{DATA_PREFIX}table/"
TABLE_PARTS_PREFIX = f"{TABLE_PREFIX}parts/"
LEDGER_KEY = f"{TABLE_PREFIX}ledger.json"
# The label files (data.labels) already taken into feedback/, by URI and ETag.
LABELS_LEDGER_KEY = f"{DATA_PREFIX}labels/ledger.json"
# The retrain pipeline: each run's snapshot of the table, the candidate bundles it trained,
# every gate decision and the drift trigger's cool-down marker.
RETRAIN_PREFIX = "retrain/"
RETRAIN_RUNS_PREFIX = f"{RETRAIN_PREFIX}runs/"
RETRAIN_CANDIDATES_PREFIX = f"{RETRAIN_PREFIX}candidates/"
# A rollout's records: rollouts/<run>/<phase>.json (figures and verdict) and rollouts/<run>/outcome.json.
ROLLOUT_PREFIX = "rollouts/"
GATE_DECISIONS_PREFIX = f"{RETRAIN_PREFIX}decisions/"
# Where SageMaker training jobs (retrain.engine "sagemaker") write their output: <job>/output/model.tar.gz.
SAGEMAKER_OUTPUT_PREFIX = f"{RETRAIN_PREFIX}sagemaker/"
RETRAIN_TRIGGER_KEY = f"{RETRAIN_PREFIX}last-trigger.json"


def table_part_key(part_id: str) -> str:
    """Key of one part of the accumulated table (the rows of one source object, as read)."""
    return f"{TABLE_PARTS_PREFIX}{part_id}.parquet"


def run_snapshot_key(run_id: str) -> str:
    """Key of the snapshot a retrain run trained on: the table's parts and the run's labelled rows."""
    return f"{RETRAIN_RUNS_PREFIX}{run_id}/snapshot.json"


def run_channel_manifest_key(run_id: str) -> str:
    """Key of the SageMaker manifest file listing a run's snapshot objects (engine 'sagemaker')."""
    return f"{RETRAIN_RUNS_PREFIX}{run_id}/{CHANNEL_MANIFEST_FILE}"


def run_labels_key(run_id: str) -> str:
    """Key of the record of which label objects a retrain run used (functions.core.labelled.LabelSources)."""
    return f"{RETRAIN_RUNS_PREFIX}{run_id}/labels.json"


def run_labelled_key(run_id: str) -> str:
    """Key of the labelled rows (feedback) a retrain run added to the table."""
    return f"{RETRAIN_RUNS_PREFIX}{run_id}/labelled.parquet"


def candidate_prefix(version: str) -> str:
    """Prefix of a candidate bundle not yet registered."""
    return f"{RETRAIN_CANDIDATES_PREFIX}{version}/"


def training_job_output_key(job_name: str) -> str:
    """The archive SageMaker uploads from a training job's model folder."""
    return f"{SAGEMAKER_OUTPUT_PREFIX}{job_name}/output/model.tar.gz"


def gate_decision_key(decided_at: str, run_id: str) -> str:
    """Key of one gate decision; sorts by time."""
    return f"{GATE_DECISIONS_PREFIX}{decided_at}-{run_id}.json"


def release_record_key(version: str, released_at: str, source_stage: str) -> str:
    """Key of the record of one release of `version` into this stage (beside the bundle it describes)."""
    return f"{MODELS_PREFIX}{version}/releases/{released_at}-{source_stage}.json"
