"""The cloud assembly as `cdk synth` writes it, read the way AWS reads it.

Shared by the package tests and the emulator tier: `synth` runs the pinned CDK CLI
(bundling included), `emulator_synth` synthesizes the stage with the documented
emulator overrides for this host's architecture, and `functions` lists every
Python Lambda function of a template with its handler, package folder and
environment, whose CloudFormation intrinsics `resolve` turns into plain values;
`tool_venv` (from benchmarks.tool_venv, shared with the load run) builds a tool's own
virtual environment from its pinned requirements.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.tool_venv import tool_venv as tool_venv  # its home; the tests keep importing it from here

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CDK = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
CDK_ENV = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
HOST_ARCHITECTURE = {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]


def synth(stage: str, outdir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """`cdk synth` of `stage` into `outdir` through the pinned CLI (Lambda packages really built)."""
    return subprocess.run(
        [str(CDK), "synth", "--quiet", "-c", f"stage={stage}", "-o", str(outdir), *extra],
        cwd=PROJECT_ROOT, env=CDK_ENV, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def emulator_overrides(api: dict[str, Any] | None = None, **inference: str) -> dict[str, Any]:
    """cdk.json's `slipway:emulator` overrides, with the function architecture of this host (and `inference`,
    and `api` settings).

    An emulator runs the functions on this machine, so their native wheels must be this host's.
    """
    overrides = dict(json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]["slipway:emulator"])
    overrides["inference"] = {**overrides.get("inference", {}), "architecture": HOST_ARCHITECTURE, **inference}
    overrides["api"] = {**overrides.get("api", {}), **(api or {})}
    return overrides


def emulator_synth(stage: str, outdir: Path, api: dict[str, Any] | None = None, **inference: str) -> None:
    """Synthesize `stage` for an emulator on this host (with `inference` settings, e.g. runtime, and `api`
    settings, e.g. another front door); raise with CDK's output when synth fails."""
    overrides = json.dumps(emulator_overrides(api, **inference))
    result = synth(stage, outdir, "-c", "emulator=true", "-c", f"slipway:emulator={overrides}")
    if result.returncode != 0:
        raise AssertionError(f"cdk synth -c stage={stage} -c emulator=true failed:\n{result.stdout}\n{result.stderr}")


@dataclass(frozen=True)
class Function:
    """One Python Lambda function of a template."""

    logical_id: str
    name: str
    handler: str
    package: Path
    environment: dict[str, Any]


def template(assembly: Path, stack: str) -> dict[str, Any]:
    return dict(json.loads((assembly / f"{stack}.template.json").read_text()))


def functions(assembly: Path, stack: str) -> list[Function]:
    """Every Python function of `stack`'s template, with the package folder its code asset points at."""
    found = []
    for logical_id, resource in template(assembly, stack)["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Lambda::Function" or not str(properties.get("Runtime", "")).startswith("python"):
            continue
        found.append(
            Function(
                logical_id=logical_id,
                name=properties["FunctionName"],
                handler=properties["Handler"],
                package=assembly / resource["Metadata"]["aws:asset:path"],
                environment=properties.get("Environment", {}).get("Variables", {}),
            )
        )
    return found


def resolve(value: Any, refs: dict[str, str]) -> str:
    """A CloudFormation value with Ref and Fn::Join resolved: pseudo parameters and `refs` by logical id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return refs[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolve(part, refs) for part in parts)
    raise ValueError(f"cannot resolve {value!r}")
