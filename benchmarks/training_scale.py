"""When training outgrows a Lambda function: `train_bundle` of the example pipeline on growing tables.

Each size is trained in a fresh process, so its wall time and peak RSS are that run's alone (the
interpreter, the imports and the table in memory included, as a Lambda function's memory counts
them). The table is the example's 30 features, its rows drawn with replacement from the real rows
with a little Gaussian noise (a smoothed bootstrap): the marginals stay skewed and positive and
the classes overlap as much as in the real data, so the fit sees data like the example's, which a
multivariate Gaussian per class (negative areas, symmetric tails) would not give it. Values are
rounded to the example's precision, so the derived feature spec is the example's.

From the measured sizes: time ≈ t0 + a·rows and memory ≈ b + c·rows (least squares; the detector's
robust covariance and the feature report sample a fixed number of rows, so part of the time does
not grow), then the rows at which the Lambda engine reaches its timeout and its memory, and what
one run costs there and on SageMaker.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.lambda_pricing import USD_PER_GB_SECOND_ARM64 as LAMBDA_USD_PER_GB_SECOND
from benchmarks.lambda_pricing import duration_usd
from benchmarks.table import Row

if TYPE_CHECKING:  # the child imports this module: it stays clear of the workload's AWS imports
    from benchmarks.workload import Workload

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 100_000, 300_000, 1_000_000)
FEATURES = 30
# Noise per feature, as a share of that feature's standard deviation in the example data.
NOISE = 0.05
SEED = 0
# One thread for the numerical libraries, as one core of a Lambda function would run them.
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

LAMBDA_TIMEOUT_SECONDS = 900.0
LAMBDA_MAX_MB = 10_240.0
LAMBDA_DEFAULT_MB = 3_008.0  # retrain.train_memory_mb's default
SAGEMAKER_INSTANCE = "ml.m5.xlarge"
SAGEMAKER_USD_PER_HOUR = 0.23  # us-east-1 list price, billed per second
SAGEMAKER_STARTUP_SECONDS = (120.0, 240.0)  # provisioning and image download, billed

_CHILD = """
import json, sys, time
from benchmarks.peak_memory import peak_rss_mb
from benchmarks.training_scale import synthetic_table
from functions.training.train import load_recipe, train_bundle
recipe = load_recipe()
columns, target = synthetic_table(recipe, int(sys.argv[1]), seed=int(sys.argv[2]))
before_mb = peak_rss_mb()
started = time.perf_counter()
bundle = train_bundle(recipe, columns, target)
seconds = time.perf_counter() - started
peak_mb = peak_rss_mb()
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "before_mb": before_mb, "rows": bundle.manifest.lineage.rows,
                  "metric": bundle.manifest.metrics[bundle.manifest.metric]}))
"""


def synthetic_table(recipe: Any, rows: int, *, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`rows` rows resampled from the recipe's data with NOISE x each feature's std, clipped to its range."""
    from functions.training.derive import derive_feature_spec
    from functions.training.train import load_table

    columns, target = load_table(recipe)
    spec = derive_feature_spec(columns, getattr(recipe, "FEATURES", None))
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(target), rows)
    table = {}
    for feature in spec.features:
        real = np.asarray(columns[feature.name], dtype=np.float64)
        values = real[picked] + rng.normal(0.0, NOISE * real.std(), rows)
        table[feature.name] = np.round(np.clip(values, real.min(), real.max()), feature.precision or 0)
    return table, np.asarray(target)[picked]


@dataclass(frozen=True)
class Run:
    """One measured training: its rows, wall time and peak RSS."""

    rows: int
    seconds: float
    peak_mb: float


@dataclass(frozen=True)
class Scaling:
    """Time ≈ fixed_seconds + seconds_per_row·rows and memory ≈ base_mb + mb_per_row·rows, fitted."""

    fixed_seconds: float
    seconds_per_row: float
    base_mb: float
    mb_per_row: float

    @classmethod
    def fit(cls, runs: list[Run]) -> Scaling:
        rows = np.array([run.rows for run in runs], dtype=np.float64)
        seconds = np.array([run.seconds for run in runs])
        peaks = np.array([run.peak_mb for run in runs])
        per_row, fixed = np.polyfit(rows, seconds, 1)
        mb_per_row, base = np.polyfit(rows, peaks, 1)
        return cls(float(fixed), float(per_row), float(base), float(mb_per_row))

    def rows_within_seconds(self, seconds: float) -> float:
        """The rows whose training takes `seconds`; infinite when time does not grow with rows."""
        return (seconds - self.fixed_seconds) / self.seconds_per_row if self.seconds_per_row > 0 else math.inf

    def rows_within_mb(self, megabytes: float) -> float:
        """The rows whose training peaks at `megabytes`; infinite when memory does not grow with rows."""
        return (megabytes - self.base_mb) / self.mb_per_row if self.mb_per_row > 0 else math.inf


def increments_per_million(runs: list[Run]) -> list[float]:
    """Seconds per million rows between consecutive sizes: near-equal figures say time grows linearly."""
    return [(b.seconds - a.seconds) / (b.rows - a.rows) * 1e6 for a, b in pairwise(runs)]


def significant(value: float, digits: int = 3) -> float:
    """`value` to `digits` significant figures: an extrapolated row count is no more precise than that."""
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def lambda_usd(seconds: float, memory_mb: float) -> float:
    """One Lambda invocation's compute charge: GB-seconds at the arm64 price."""
    return duration_usd(seconds, memory_mb)


def sagemaker_usd(seconds: float, startup_seconds: float) -> float:
    """One training job's charge: the billed start-up plus the training, per second at the instance's price."""
    return (startup_seconds + seconds) * SAGEMAKER_USD_PER_HOUR / 3600


def _measure(rows: int) -> Run:
    answer = subprocess.run(
        [sys.executable, "-c", _CHILD, str(rows), str(SEED)],
        capture_output=True, text=True, check=True, cwd=PROJECT_ROOT, env={**os.environ, **_ONE_THREAD},
    )  # fmt: skip
    measured = json.loads(answer.stdout.strip().splitlines()[-1])
    assert measured["rows"] == rows, answer.stdout
    print(f"  {rows:,} rows: {measured['seconds']:.1f} s, peak {measured['peak_mb']:.0f} MB "
          f"({measured['before_mb']:.0f} MB before training)", flush=True)  # fmt: skip
    return Run(rows, float(measured["seconds"]), float(measured["peak_mb"]))


def limit_rows(scaling: Scaling) -> dict[str, float]:
    """The rows at which the Lambda engine reaches its timeout, its largest memory and its default memory."""
    return {
        "time": significant(scaling.rows_within_seconds(LAMBDA_TIMEOUT_SECONDS)),
        "max_memory": significant(scaling.rows_within_mb(LAMBDA_MAX_MB)),
        "default_memory": significant(scaling.rows_within_mb(LAMBDA_DEFAULT_MB)),
    }


def crossover_note(limits: dict[str, float]) -> str:
    """Which of Lambda's limits a growing table reaches first, at the default memory and at the largest."""
    time_rows = limits["time"]

    def first(memory_rows: float, memory: str) -> str:
        if time_rows <= memory_rows:
            return f"at {memory} the {LAMBDA_TIMEOUT_SECONDS:.0f} s timeout comes first, at {time_rows:,.0f} rows"
        return f"at {memory} memory runs out first, at {memory_rows:,.0f} rows"

    text = f"{first(limits['default_memory'], f'{LAMBDA_DEFAULT_MB:,.0f} MB')}; "
    text += f"{first(limits['max_memory'], f'{LAMBDA_MAX_MB:,.0f} MB')}"
    return text[0].upper() + text[1:]


def run(workload: Workload | None = None, *, quick: bool = False, **_: Any) -> list[Row]:
    sizes = SIZES[:-1] if quick else SIZES
    runs = [_measure(rows) for rows in sizes]
    scaling = Scaling.fit(runs)
    limits = limit_rows(scaling)
    low, high = SAGEMAKER_STARTUP_SECONDS
    method = (
        f"training: train_bundle of model.recipe.build (StandardScaler + LogisticRegression) on synthetic tables of "
        f"{FEATURES} features, rows resampled from the example's with Gaussian noise of {NOISE:g} x each feature's "
        "std; the whole train_bundle (fit, ONNX export, outlier detector, parity check, feature report), one fresh "
        "process per size, wall time and peak RSS of that process (VmHWM; the interpreter, imports and the "
        "table included); one thread for the numerical libraries (OMP/OpenBLAS/MKL_NUM_THREADS=1)"
    )
    fit_note = (
        f"least squares over the {len(runs)} sizes: time ≈ {scaling.fixed_seconds:.1f} s + "
        f"{scaling.seconds_per_row * 1e6:.1f} s per million rows (per million rows between consecutive sizes: "
        f"{', '.join(f'{step:.0f}' for step in increments_per_million(runs))} s; the "
        "detector and the feature report sample a fixed number of rows), memory ≈ "
        f"{scaling.base_mb:.0f} MB + {scaling.mb_per_row * 1e6:.0f} MB per million rows; extrapolated past the "
        "largest size. Assumes Lambda's CPU at 3,008 MB and above runs this mostly single-threaded training as "
        "fast as one core here (Lambda gives one vCPU per 1,769 MB, up to 6 at 10,240 MB, so more memory does "
        f"not make it faster). {crossover_note(limits)}"
    )
    cost_note = (
        f"cost of one run: Lambda engine at {LAMBDA_DEFAULT_MB:,.0f} MB, arm64 ${LAMBDA_USD_PER_GB_SECOND:.10f} per "
        f"GB-second, the measured time; SageMaker {SAGEMAKER_INSTANCE} at ${SAGEMAKER_USD_PER_HOUR} per hour "
        f"(us-east-1 list price, per second) for the measured time plus a billed start-up of {low / 60:.0f}-"
        f"{high / 60:.0f} minutes (its midpoint here; the range is in docs/retrain.md), assuming the same speed"
    )
    rows: list[Row] = []
    for measured in runs:
        name = f"training: {measured.rows:,} rows x {FEATURES} features"
        rows.append(Row(name, "s", measured.seconds, note=method if not rows else None))
        rows.append(Row(f"{name}, peak memory", "MB", measured.peak_mb))
    rows += [
        Row("training: time per million rows", "s", scaling.seconds_per_row * 1e6, note=fit_note),
        Row("training: memory per million rows", "MB", scaling.mb_per_row * 1e6),
        Row(f"training: rows where Lambda's {LAMBDA_TIMEOUT_SECONDS:.0f} s runs out", "rows", limits["time"]),
        Row(f"training: rows where {LAMBDA_MAX_MB:,.0f} MB runs out", "rows", limits["max_memory"]),
        Row(f"training: rows where {LAMBDA_DEFAULT_MB:,.0f} MB runs out", "rows", limits["default_memory"]),
    ]
    for measured in runs:
        lam = lambda_usd(measured.seconds, LAMBDA_DEFAULT_MB)
        sage = sagemaker_usd(measured.seconds, (low + high) / 2)
        label = f"training: one run of {measured.rows:,} rows"
        rows.append(Row(f"{label}, Lambda engine", "USD", lam, note=cost_note if measured is runs[0] else None))
        rows.append(Row(f"{label}, SageMaker {SAGEMAKER_INSTANCE}", "USD", sage))
    return rows
