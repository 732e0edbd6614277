"""Unzipped size of the inference deployment package, built for the Lambda runtime, against the naive one.

Slipway's package is built by infra/bundling.py exactly as `cdk synth` builds
it (arm64, python3.12). The naive package is what a data scientist would
ship: scikit-learn, numpy, scipy and joblib (with their dependencies) pip-
installed for the same platform with the same pip options, untrimmed.
Both need PyPI; without it the rows say "not measured" and why.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import targets
from benchmarks.table import Row
from benchmarks.workload import Workload

ARCHITECTURE = "arm64"
RUNTIME = "python3.12"
NAIVE_PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib")
MB = 1024 * 1024  # MiB: what Lambda's 250 MB limit (262,144,000 bytes) counts in
PIP_TIMEOUT_S = 600
_PIP_PLATFORM = [
    "--platform", "manylinux_2_28_aarch64",
    "--platform", "manylinux_2_17_aarch64",
    "--platform", "manylinux2014_aarch64",
    "--implementation", "cp", "--python-version", "3.12",
    "--only-binary=:all:", "--no-compile",
]  # fmt: skip


def run(workload: Workload, **_: Any) -> list[Row]:
    # Imported here: infra imports the CDK, which starts a Node.js process that must not run during timings.
    from infra.bundling import build_inference_package, find_runtime_interpreter, python_version_of

    with tempfile.TemporaryDirectory(prefix="slipway-package-") as scratch:
        ours, ours_reason = _measure(
            lambda: build_inference_package(Path(scratch) / "ours", architecture=ARCHITECTURE, runtime=RUNTIME)
        )
        naive, naive_reason = _measure(lambda: _naive_package(Path(scratch) / "naive"))
    for name, reason in (("Slipway", ours_reason), ("naive baseline", naive_reason)):
        if reason:
            print(f"package size ({name}): not measured ({reason})", flush=True)
    interpreter = find_runtime_interpreter(python_version_of(RUNTIME))
    compiled = f"bytecode compiled by {interpreter}" if interpreter else "no bytecode: no Python 3.12 here"
    pins = ", ".join(f"{name}=={importlib.metadata.version(name)}" for name in NAIVE_PACKAGES)
    note = (
        f"package: unzipped bytes of the folder Lambda receives ({ARCHITECTURE}, {RUNTIME}). Slipway: "
        f"infra.bundling.build_inference_package (trimmed; {compiled}). Baseline: "
        f"pip install --target of {pins} with their dependencies, same pip platform options, untrimmed"
    )
    if ours_reason or naive_reason:
        note += f"; not measured: {'; '.join(r for r in (ours_reason, naive_reason) if r)}"
    return [
        Row(
            "inference package, unzipped",
            "MB",
            ours / MB if ours is not None else None,
            naive / MB if naive is not None else None,
            target=f"≤ {targets.PACKAGE_MB:.0f} MB",
            met=None if ours is None else ours / MB <= targets.PACKAGE_MB,
            note=note,
        )
    ]


def _measure(build: Any) -> tuple[int | None, str | None]:
    """Size in bytes, or None and the reason (no network to PyPI, a failed install)."""
    try:
        return int(build()), None
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # BundlingError is a RuntimeError
        return None, str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__


def _naive_package(out_dir: Path) -> int:
    # The versions this machine trains with, so the baseline ships what it was tested with.
    requirements = [f"{name}=={importlib.metadata.version(name)}" for name in NAIVE_PACKAGES]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        *_PIP_PLATFORM, "--target", str(out_dir), *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip install failed (exit {result.returncode}): {result.stderr.strip()[-1000:]}")
    from infra.bundling import folder_size

    return folder_size(out_dir)
